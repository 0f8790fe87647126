// Character devices: the stateless memory devices are reopened by path;
// terminals (pty masters and slaves, the terminal the program was run
// from, consoles) carry a TtyState: termios, window size, a pair's
// settings and queued bytes (terminals.cc pairs them up once the whole
// table is read). libimg's policy refuses the rest.
#include "fd_kind.h"

#include <cerrno>
#include <cstring>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include <ckpt/img/tty_abi.h>

namespace ckpt::writer {

namespace {

/// A terminal restore might reconnect to its own: pseudo-terminal slaves
/// (136..143), virtual consoles and serial ports (major 4), /dev/tty (5:0)
/// and /dev/console (5:1). /dev/ptmx (5:2) is a master, not a terminal to
/// reconnect. mark_controlling_terminal() then keeps the mark only on the
/// terminal the program was run from.
bool is_terminal(dev_t rdev) {
  unsigned ma = major(rdev), mi = minor(rdev);
  return (ma >= 136 && ma <= 143) || ma == 4 || (ma == 5 && (mi == 0 || mi == 1));
}

}  // namespace

bool recognizes_char_device(const FdProbe &p) { return !is_anon_inode(p.link) && S_ISCHR(p.st.st_mode); }

img::Status capture_char_device(pid_t pid, FdInfo &fi) {
  dev_t rdev = dev_t(fi.record.rdev);
  bool master = rdev == makedev(5, 2);
  if (!is_terminal(rdev) && !master) return img::Status::ok();
  if (!master) fi.record.flags |= img::kFdTerminal;
  int fd = fi.record.fd;
  // The target's own open file description (pidfd_getfd): reopening a
  // master by path would make a new pair.
  UniqueFd pidfd(int(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return img::make_error("%s: pidfd_open: %s", fd_where(pid, fd).c_str(), strerror(errno));
  UniqueFd copy(int(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
  if (!copy.valid()) return img::make_error("%s: pidfd_getfd: %s", fd_where(pid, fd).c_str(), strerror(errno));
  img::TtyState s{};
  s.header = {sizeof s, img::TtyState::kVersion};
  img::KernelTermios2 t{};
  if (ioctl(copy.get(), img::kTcgets2, &t) != 0) {
    // A hung-up terminal (its session ended, or its master closed) answers
    // EIO to everything: nothing to carry over, the fd stays as it is.
    if (errno == EIO) return img::Status::ok();
    return img::make_error("%s: terminal %s: TCGETS2: %s", fd_where(pid, fd).c_str(), fi.path.c_str(), strerror(errno));
  }
  img::set_termios(s, t);
  struct winsize ws {};
  if (ioctl(copy.get(), TIOCGWINSZ, &ws) == 0) {
    s.ws_row = ws.ws_row;
    s.ws_col = ws.ws_col;
    s.ws_xpixel = ws.ws_xpixel;
    s.ws_ypixel = ws.ws_ypixel;
  }
  if (master) {
    s.flags |= img::kTtyMaster;
    unsigned index = 0;
    int on = 0;
    if (ioctl(copy.get(), TIOCGPTN, &index) != 0)
      return img::make_error("%s: pty master: TIOCGPTN: %s", fd_where(pid, fd).c_str(), strerror(errno));
    s.index = index;
    if (ioctl(copy.get(), TIOCGPKT, &on) == 0 && on) s.flags |= img::kTtyPacketMode;
    if (ioctl(copy.get(), TIOCGPTLCK, &on) == 0 && on) s.flags |= img::kTtyLocked;
  } else if (int index = img::pty_slave_index(major(rdev), minor(rdev)); index >= 0) {
    s.flags |= img::kTtySlave;
    s.index = img::u32(index);
    int on = 0;
    if (ioctl(copy.get(), TIOCGEXCL, &on) == 0 && on) s.flags |= img::kTtyExclusive;
    // The slave's devpts inode: grantpt() gave it to the opener's uid and
    // the tty group with mode 0620 (or the devpts mount's gid=/mode=).
    struct stat st {};
    if (fstat(copy.get(), &st) == 0) {
      s.owner_uid = st.st_uid;
      s.owner_gid = st.st_gid;
      s.file_mode = st.st_mode & 07777;
    }
  }
  fi.state = img::fd_state_bytes(s);
  return img::Status::ok();
}

}  // namespace ckpt::writer
