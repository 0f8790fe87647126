// CKPT_ASSERT: invariant checks that stay on in release builds, rr-style.
//
//   CKPT_ASSERT(pos_ == layout_.total_size) << "wrote " << pos_ << " bytes";
//
// For the program's own consistency only (a plan the writer made, a table it
// built, an argument block the reader laid out): input from a file or a
// process is never asserted, it is an Error (expected.h). A failed check
// prints one line — condition, file:line and the streamed context — and
// aborts, so the broken invariant is reported where it broke instead of as
// a wrong image or a restored process that misbehaves later.
#pragma once

#include <sstream>
#include <string>

namespace ckpt::img {

/// Collects the context streamed after a failed CKPT_ASSERT; its destructor
/// reports and aborts.
class AssertionFailure {
 public:
  AssertionFailure(const char *condition, const char *file, int line);
  [[noreturn]] ~AssertionFailure();
  AssertionFailure(const AssertionFailure &) = delete;
  AssertionFailure &operator=(const AssertionFailure &) = delete;

  template <typename T>
  AssertionFailure &operator<<(const T &value) {
    context_ << value;
    return *this;
  }

 private:
  const char *condition_;
  const char *file_;
  int line_;
  std::ostringstream context_;
};

}  // namespace ckpt::img

// The switch makes the macro one statement (safe under an unbraced if/else)
// while still letting `<< context` follow it.
#define CKPT_ASSERT(cond)                                   \
  switch (0)                                                \
  case 0:                                                   \
  default:                                                  \
    if (__builtin_expect(static_cast<bool>(cond), 1)) {     \
    } else                                                  \
      ::ckpt::img::AssertionFailure(#cond, __FILE__, __LINE__)
