// signalfds: the mask of signals they read, stored as a SignalFdState;
// restore makes a new signalfd with it (reader/src/fd_kinds/signalfd.cc).
#include "fd_kind.h"

#include "../procfs.h"

#include <cstdlib>

namespace ckpt::writer {

bool recognizes_signalfd(const FdProbe &p) { return is_anon_inode(p.link) && p.link.substr(11) == "[signalfd]"; }

img::Status capture_signalfd(pid_t pid, FdInfo &fi) {
  int fd = fi.record.fd;
  auto text = read_file(fdinfo_path(pid, fd));
  if (!text) return text.error().context(fd_where(pid, fd));
  // fs/signalfd.c signalfd_show_fdinfo: "sigmask:\t%016llx", bit N-1 for
  // signal N. Signals pending for the process are its own state (the
  // PendingSignals note), not the signalfd's.
  auto value = fdinfo_value(*text, "sigmask");
  char *end = nullptr;
  unsigned long long mask = value ? strtoull(value->c_str(), &end, 16) : 0;
  if (!value || end == value->c_str())
    return img::make_error("%s: signalfd: fdinfo has no sigmask line", fd_where(pid, fd).c_str());
  img::SignalFdState state{};
  state.header = {sizeof state, img::SignalFdState::kVersion};
  state.sigmask = mask;
  fi.state = img::fd_state_bytes(state);
  return img::Status::ok();
}

}  // namespace ckpt::writer
