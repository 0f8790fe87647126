#include "self_maps.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace ckpt::reader {

// One line of /proc/self/maps, "START-END PERMS OFFSET DEV INODE   NAME",
// parsed by hand: sscanf with four skipped fields was the largest user-space
// cost of reading maps, which restore does four times (decision 235).
static bool parse_maps_line(const char *p, SelfMapping &m) {
  char *end;
  m.start = std::strtoull(p, &end, 16);
  if (end == p || *end != '-') return false;
  p = end + 1;
  m.end = std::strtoull(p, &end, 16);
  if (end == p) return false;
  p = end;
  for (int field = 0; field < 4; field++) {  // perms, offset, dev, inode
    while (*p == ' ') p++;
    while (*p && *p != ' ' && *p != '\n') p++;
  }
  while (*p == ' ' || *p == '\t') p++;
  m.name = p;
  while (!m.name.empty() && (m.name.back() == '\n' || m.name.back() == ' ')) m.name.pop_back();
  return true;
}

img::Expected<std::vector<SelfMapping>> read_self_maps() {
  FILE *f = std::fopen("/proc/self/maps", "re");
  if (!f) return img::make_error("/proc/self/maps: %s", strerror(errno));
  std::vector<SelfMapping> out;
  char line[4096];
  while (std::fgets(line, sizeof line, f)) {
    SelfMapping m;
    if (parse_maps_line(line, m)) out.push_back(std::move(m));
  }
  std::fclose(f);
  return out;
}

}  // namespace ckpt::reader
