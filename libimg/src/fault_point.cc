#include <ckpt/img/fault_point.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace ckpt::img {

namespace {

enum class FaultAction { Kill, Eio, Wait };

struct FaultSpec {
  std::string point;
  FaultAction action = FaultAction::Kill;
};

// CKPT_FAULT: one or more `point[:action]`, comma-separated.
const std::vector<FaultSpec> &fault_specs() {
  static const std::vector<FaultSpec> specs = [] {
    std::vector<FaultSpec> out;
    const char *env = std::getenv("CKPT_FAULT");
    if (!env || !*env) return out;
    std::string v = env;
    for (size_t at = 0; at <= v.size();) {
      size_t comma = v.find(',', at);
      std::string one = v.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      at = comma == std::string::npos ? v.size() + 1 : comma + 1;
      if (one.empty()) continue;
      FaultSpec s;
      size_t colon = one.find(':');
      s.point = one.substr(0, colon);
      std::string action = colon == std::string::npos ? "" : one.substr(colon + 1);
      if (action == "eio") s.action = FaultAction::Eio;
      if (action == "wait") s.action = FaultAction::Wait;
      out.push_back(s);
    }
    return out;
  }();
  return specs;
}

const FaultSpec *find_spec(const char *name) {
  for (const FaultSpec &s : fault_specs())
    if (s.point == name) return &s;
  return nullptr;
}

// The wait action: says "here" by creating $CKPT_FAULT_WAIT.<point>, then
// waits until $CKPT_FAULT_WAIT exists (the test did what it wanted done at
// this point), at most a minute, and goes on.
void wait_at(const char *name) {
  const char *go = std::getenv("CKPT_FAULT_WAIT");
  if (!go || !*go) return;
  std::string here = std::string(go) + "." + name;
  int fd = open(here.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) close(fd);
  for (int i = 0; i < 6000 && access(go, F_OK) != 0; i++) {
    timespec ts{0, 10'000'000};
    nanosleep(&ts, nullptr);
  }
}

}  // namespace

bool fault_point_armed(const char *name) { return find_spec(name) != nullptr; }

Status fault_point(const char *name) {
  const FaultSpec *s = find_spec(name);
  if (!s) return {};
  switch (s->action) {
    case FaultAction::Eio:
      return make_error("injected fault at %s: %s", name, std::strerror(EIO));
    case FaultAction::Wait:
      wait_at(name);
      return {};
    case FaultAction::Kill:
      break;
  }
  // SIGKILL, as the OOM killer or a job scheduler would: no handler, no
  // destructor, no atexit runs.
  raise(SIGKILL);
  return {};
}

}  // namespace ckpt::img
