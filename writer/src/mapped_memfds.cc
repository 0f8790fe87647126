// read_mapped_memfd_seals: see mapped_memfds.h.
#include "mapped_memfds.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <unistd.h>

namespace ckpt::writer {

using img::u32;
using img::u64;

static bool is_memfd_path(const std::string &path) {
  static constexpr std::string_view kPrefix = "/memfd:", kDeleted = " (deleted)";
  return path.size() > kPrefix.size() + kDeleted.size() && path.compare(0, kPrefix.size(), kPrefix) == 0 &&
         path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0;
}

img::Expected<std::map<u64, u32>> read_mapped_memfd_seals(pid_t pid, const std::vector<MapEntry> &maps) {
  std::map<u64, u32> out;
  for (const MapEntry &m : maps) {
    if (!m.shared || !is_memfd_path(m.path)) continue;
    // /proc/PID/map_files/START-END opens the mapped file itself; seals
    // belong to the inode, so any open file of it answers F_GET_SEALS.
    std::string link = map_files_path(pid, m);
    int fd = open(link.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
      // Kernel quirk: map_files' links open only with
      // CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (proc_map_files_get_link):
      // an unprivileged dump cannot see the seals and leaves them out.
      if (errno == EPERM || errno == EACCES) continue;
      return img::make_error("pid %d: open %s (%s) to read its seals: %s", int(pid), link.c_str(), m.path.c_str(),
                             strerror(errno));
    }
    int seals = fcntl(fd, F_GET_SEALS);
    int e = errno;
    close(fd);
    // A file named like a memfd on a file system without seals (EINVAL)
    // is not one.
    if (seals < 0 && e == EINVAL) continue;
    if (seals < 0)
      return img::make_error("pid %d: F_GET_SEALS of the memfd mapped at 0x%llx: %s", int(pid),
                             (unsigned long long)m.start, strerror(e));
    out[m.start] = u32(seals);
  }
  return out;
}

}  // namespace ckpt::writer
