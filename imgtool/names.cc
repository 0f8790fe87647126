#include "names.h"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <sys/mman.h>

namespace ckpt::tool {

using namespace img;
using json = nlohmann::ordered_json;

std::string hex(u64 v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
  return b;
}

std::string prot_string(u32 prot, bool shared) {
  std::string s = "---p";
  if (prot & PROT_READ) s[0] = 'r';
  if (prot & PROT_WRITE) s[1] = 'w';
  if (prot & PROT_EXEC) s[2] = 'x';
  if (shared) s[3] = 's';
  return s;
}

std::string signal_name(int sig) {
  const char *abbrev = sig > 0 && sig < 65 ? sigabbrev_np(sig) : nullptr;
  if (abbrev) return std::string("SIG") + abbrev;
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) return "SIGRTMIN+" + std::to_string(sig - SIGRTMIN);
  return "signal " + std::to_string(sig);
}

json signal_set(u64 mask) {
  json a = json::array();
  for (int s = 1; s <= 64; s++)
    if (mask & (u64(1) << (s - 1))) a.push_back(signal_name(s));
  return a;
}

const char *rlimit_name(u32 r) {
  static const char *names[] = {"cpu", "fsize", "data", "stack", "core", "rss", "nproc", "nofile",
                                "memlock", "as", "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime"};
  return r < std::size(names) ? names[r] : "unknown";
}

}  // namespace ckpt::tool
