#include "guard_pages.h"

#include "pagemap_scan.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/ioctl.h>
#include <unistd.h>

namespace ckpt::writer {

using namespace img;

Expected<std::vector<GuardRangeRecord>> read_guard_ranges(pid_t pid, const std::vector<MapEntry> &maps) {
  std::vector<GuardRangeRecord> out;
  std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("%s: %s", path.c_str(), strerror(errno));
  // One walk over the whole address space: the kernel visits each VMA
  // and skips the holes between them.
  u64 lo = ~u64(0), hi = 0;
  for (const MapEntry &m : maps) {
    if (m.path == "[vsyscall]") continue;  // above TASK_SIZE: not in the page tables
    lo = std::min(lo, m.start);
    hi = std::max(hi, m.end);
  }
  u64 failed_at = 0;
  int err = pagemap_scan_walk(fd, lo, hi, 0, kPageIsGuard, [&](const PageRegion &region) {
    // One record per VMA's piece of a run (a run may cross VMAs); a full
    // vector splits a run, and the next call continues it.
    for (const MapEntry &m : maps) {
      u64 s = std::max(m.start, region.start), e = std::min(m.end, region.end);
      if (s >= e) continue;
      if (!out.empty() && out.back().start + out.back().length == s && out.back().start >= m.start)
        out.back().length += e - s;
      else
        out.push_back({pid, 0, s, e - s});
    }
  }, &failed_at);
  if (err) {
    close(fd);
    // No PAGEMAP_SCAN (before 6.7), or no PAGE_IS_GUARD (before 6.14;
    // guard pages exist from 6.13, which cannot show them).
    if (failed_at == lo && (err == ENOTTY || err == EINVAL)) return std::vector<GuardRangeRecord>{};
    return make_error("PAGEMAP_SCAN of %s at 0x%llx: %s", path.c_str(), (unsigned long long)failed_at, strerror(err));
  }
  close(fd);
  return out;
}

}  // namespace ckpt::writer
