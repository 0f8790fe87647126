// Character devices: the stateless memory devices are reopened by path;
// the terminal the program ran from is reconnected to the restoring one
// (kFdTerminal, decision 27); libimg's policy refuses the rest.
#include "fd_kind.h"

#include <sys/sysmacros.h>

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

img::Status capture_char_device(pid_t, FdInfo &fi) {
  if (is_terminal(dev_t(fi.record.rdev))) fi.record.flags |= img::kFdTerminal;
  return img::Status::ok();
}

}  // namespace ckpt::writer
