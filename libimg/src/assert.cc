#include <ckpt/img/assert.h>

#include <cstdio>
#include <cstdlib>

namespace ckpt::img {

AssertionFailure::AssertionFailure(const char *condition, const char *file, int line)
    : condition_(condition), file_(file), line_(line) {}

AssertionFailure::~AssertionFailure() {
  std::string context = context_.str();
  std::fprintf(stderr, "internal error: %s:%d: CKPT_ASSERT(%s) failed%s%s\n", file_, line_, condition_,
               context.empty() ? "" : ": ", context.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace ckpt::img
