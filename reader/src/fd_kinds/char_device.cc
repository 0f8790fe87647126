// Character devices: the terminal the program ran from (kFdTerminal) is
// reconnected to the restoring terminal (decision 20); pty masters and
// slaves come back as a new pair (pty.cc); the others (the stateless
// memory devices, consoles and serial lines) are reopened by path, checked
// to be the same device.
#include "fd_kind.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

namespace ckpt::reader {

using namespace img;

Status check_char_device(const CkptView &v, const FdRecord &f, const HereNowOptions &) {
  // The controlling terminal is reconnected to ours, whatever its path;
  // a pty end is made anew (only /dev/ptmx must be there);
  // the others are reopened by path and must be that device.
  if (f.flags & kFdTerminal) return {};
  if (is_pty_end(v, f)) return access("/dev/ptmx", R_OK | W_OK) == 0 ? Status{} : make_error("fd %d: /dev/ptmx: %s", f.fd, strerror(errno));
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
  if (is_pty_end(c.view, r)) return open_pty_end(c, r);
  // O_NOCTTY: a console reopened by a process without a controlling
  // terminal would otherwise become its controlling terminal.
  std::string path(c.view.fds.str_or_empty(r.path));
  int fd = open(path.c_str(), reopen_flags(r) | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return make_error("fd %d: cannot open %s: %s", r.fd, path.c_str(), strerror(errno));
  return fd;
}

}  // namespace ckpt::reader
