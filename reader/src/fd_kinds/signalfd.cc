// signalfds: a new signalfd reading the stored mask. The signals pending
// for the process come back with the process (PendingSignals).
#include "fd_kind.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

Expected<int> open_signalfd(FdOpenContext &c, const FdRecord &r) {
  auto state = fd_state<SignalFdState>(c.view.fds, r);
  if (!state) return state.error().context("fd " + std::to_string(r.fd) + " (signalfd)");
  // The kernel's sigset is the 8 bytes of the mask (glibc's sigset_t is
  // 128 bytes): the raw syscall takes exactly what fdinfo showed.
  u64 mask = state->sigmask;
  int fd = int(syscall(SYS_signalfd4, -1, &mask, sizeof mask, O_CLOEXEC));
  if (fd < 0) return make_error("fd %d: signalfd(mask %016llx): %s", r.fd, (unsigned long long)mask, strerror(errno));
  return with_status_flags(fd, r, "signalfd");
}

}  // namespace ckpt::reader
