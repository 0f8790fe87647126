// read_mapped_objects: see mapped_memfds.h.
#include "mapped_memfds.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::writer {

using img::u32;
using img::u64;

static constexpr std::string_view kDeleted = " (deleted)";

static bool ends_deleted(const std::string &path) {
  return path.size() > kDeleted.size() && path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0;
}

static bool is_memfd_path(const std::string &path) {
  static constexpr std::string_view kPrefix = "/memfd:";
  return path.size() > kPrefix.size() + kDeleted.size() && path.compare(0, kPrefix.size(), kPrefix) == 0 &&
         ends_deleted(path);
}

// A deleted file restore makes again (mapped_objects.cc,
// new_deleted_file_object), not the kernel's own objects that also show
// " (deleted)": shared anonymous memory, hugetlb memory, SysV segments,
// whose mode the restore's way of making them gives as before.
static bool is_remade_deleted_file(const MapEntry &m) {
  const std::string &p = m.path;
  return ends_deleted(p) && p[0] == '/' && p.rfind("/dev/zero", 0) != 0 && p.rfind("/SYSV", 0) != 0 &&
         p != "/anon_hugepage (deleted)";
}

img::Expected<std::map<u64, MappedObjectFacts>> read_mapped_objects(pid_t pid, const std::vector<MapEntry> &maps) {
  std::map<u64, MappedObjectFacts> out;
  for (const MapEntry &m : maps) {
    if (!m.shared || !is_remade_deleted_file(m)) continue;
    bool memfd = is_memfd_path(m.path);
    // /proc/PID/map_files/START-END opens the mapped file itself; seals
    // and mode belong to the inode, so any open file of it answers.
    std::string link = map_files_path(pid, m);
    int fd = open(link.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
      // Kernel quirk: map_files' links open only with
      // CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (proc_map_files_get_link):
      // an unprivileged dump cannot see them and leaves them out.
      if (errno == EPERM || errno == EACCES) continue;
      return img::make_error("pid %d: open %s (%s) to read its seals and mode: %s", int(pid), link.c_str(),
                             m.path.c_str(), strerror(errno));
    }
    MappedObjectFacts facts;
    struct stat st;
    int e = 0;
    if (fstat(fd, &st) == 0)
      facts.mode = u32(st.st_mode & 07777);
    else
      e = errno;
    int seals = memfd && !e ? fcntl(fd, F_GET_SEALS) : 0;
    if (seals < 0) e = errno;
    close(fd);
    // A file named like a memfd on a file system without seals (EINVAL)
    // is not one.
    if (seals < 0 && e == EINVAL) e = 0;
    else if (memfd && seals >= 0) facts.seals = u32(seals);
    if (e)
      return img::make_error("pid %d: %s of the object mapped at 0x%llx (%s): %s", int(pid),
                             facts.mode ? "F_GET_SEALS" : "fstat", (unsigned long long)m.start, m.path.c_str(),
                             strerror(e));
    out[m.start] = facts;
  }
  return out;
}

}  // namespace ckpt::writer
