#include "self_maps.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ckpt::reader {

img::Expected<std::vector<SelfMapping>> read_self_maps() {
  FILE *f = std::fopen("/proc/self/maps", "re");
  if (!f) return img::make_error("/proc/self/maps: %s", strerror(errno));
  std::vector<SelfMapping> out;
  char line[4096];
  while (std::fgets(line, sizeof line, f)) {
    SelfMapping m;
    unsigned long long s, e;
    int name_at = 0;
    if (std::sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &s, &e, &name_at) < 2) continue;
    m.start = s;
    m.end = e;
    if (name_at > 0) {
      m.name = line + name_at;
      while (!m.name.empty() && (m.name.back() == '\n' || m.name.back() == ' ')) m.name.pop_back();
    }
    out.push_back(m);
  }
  std::fclose(f);
  return out;
}

}  // namespace ckpt::reader
