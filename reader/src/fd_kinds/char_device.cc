// Character devices: the terminal the program ran from (kFdTerminal) is
// reconnected to the restoring terminal (decision 20); the others (only
// the stateless memory devices pass libimg's policy) are reopened by path.
#include "fd_kind.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>

namespace ckpt::reader {

using namespace img;

Status check_char_device(const CkptView &v, const FdRecord &f, const HereNowOptions &) {
  // The controlling terminal is reconnected to ours, whatever its path;
  // the others are reopened by path and must be that device.
  if (f.flags & kFdTerminal) return {};
  std::string path(v.fds.str_or_empty(f.path));
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return make_error("fd %d: %s: %s", f.fd, path.c_str(), strerror(errno));
  if (!S_ISCHR(st.st_mode) || u64(st.st_rdev) != f.rdev)
    return make_error("fd %d: %s is not the character device it was at the dump", f.fd, path.c_str());
  return {};
}

Expected<int> open_char_device(FdOpenContext &c, const FdRecord &r) {
  if (r.flags & kFdTerminal) {
    int acc = r.open_flags & O_ACCMODE;
    int src = c.terminal[acc == O_RDONLY ? 0 : (r.fd == 2 ? 2 : 1)];
    if (src >= 0) {
      int fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return make_error("fd %d: dup of the terminal: %s", r.fd, strerror(errno));
      return fd;
    }
  }
  return open_by_path(c.view, r);
}

}  // namespace ckpt::reader
