#include <ckpt/img/fault_point.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ckpt::img {

namespace {

struct FaultSpec {
  std::string point;
  bool eio = false;
};

const FaultSpec &fault_spec() {
  static const FaultSpec spec = [] {
    FaultSpec s;
    const char *env = std::getenv("CKPT_FAULT");
    if (!env || !*env) return s;
    std::string v = env;
    size_t colon = v.find(':');
    s.point = v.substr(0, colon);
    s.eio = colon != std::string::npos && v.substr(colon + 1) == "eio";
    return s;
  }();
  return spec;
}

}  // namespace

bool fault_point_armed(const char *name) {
  const FaultSpec &s = fault_spec();
  return !s.point.empty() && s.point == name;
}

Status fault_point(const char *name) {
  if (!fault_point_armed(name)) return {};
  if (fault_spec().eio) return make_error("injected fault at %s: %s", name, std::strerror(EIO));
  // SIGKILL, as the OOM killer or a job scheduler would: no handler, no
  // destructor, no atexit runs.
  raise(SIGKILL);
  return {};
}

}  // namespace ckpt::img
