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
  PageRegion regions[256];
  for (u64 at = lo; at < hi;) {
    PmScanArg arg{};
    arg.size = sizeof arg;
    arg.start = at;
    arg.end = hi;
    arg.vec = reinterpret_cast<u64>(regions);
    arg.vec_len = sizeof regions / sizeof regions[0];
    arg.category_mask = kPageIsGuard;
    arg.return_mask = kPageIsGuard;
    long n = ioctl(fd, kPagemapScan, &arg);
    if (n < 0) {
      int err = errno;
      close(fd);
      // No PAGEMAP_SCAN (before 6.7), or no PAGE_IS_GUARD (before 6.14;
      // guard pages exist from 6.13, which cannot show them).
      if (at == lo && (err == ENOTTY || err == EINVAL)) return std::vector<GuardRangeRecord>{};
      return make_error("PAGEMAP_SCAN of %s at 0x%llx: %s", path.c_str(), (unsigned long long)at, strerror(err));
    }
    for (long i = 0; i < n; i++) {
      // One record per VMA's piece of a run (a run may cross VMAs); a full
      // vector splits a run, and the next call continues it.
      for (const MapEntry &m : maps) {
        u64 s = std::max(m.start, regions[i].start), e = std::min(m.end, regions[i].end);
        if (s >= e) continue;
        if (!out.empty() && out.back().start + out.back().length == s && out.back().start >= m.start)
          out.back().length += e - s;
        else
          out.push_back({pid, 0, s, e - s});
      }
    }
    if (arg.walk_end <= at) break;
    at = arg.walk_end;
  }
  close(fd);
  return out;
}

}  // namespace ckpt::writer
