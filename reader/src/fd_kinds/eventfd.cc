// eventfds: a new eventfd with the stored counter and EFD_SEMAPHORE, and
// the fd's status flags (O_NONBLOCK).
#include "fd_kind.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

Expected<int> open_eventfd(FdOpenContext &c, const FdRecord &r) {
  auto state = fd_state<EventFdState>(c.view.fds, r);
  if (!state) return state.error().context("fd " + std::to_string(r.fd) + " (eventfd)");
  int flags = EFD_CLOEXEC | EFD_NONBLOCK | ((state->flags & kEventFdSemaphore) ? EFD_SEMAPHORE : 0);
  // eventfd() takes an unsigned int start value; the counter is 64 bits
  // (up to 2^64-2): start at 0 and add it with one write.
  int fd = eventfd(0, flags);
  if (fd < 0) return make_error("fd %d: eventfd: %s", r.fd, strerror(errno));
  if (state->count && write(fd, &state->count, sizeof state->count) != sizeof state->count) {
    int e = errno;
    close(fd);
    return make_error("fd %d: cannot set the eventfd counter to %llu: %s", r.fd, (unsigned long long)state->count,
                      strerror(e));
  }
  return with_status_flags(fd, r, "eventfd");
}

}  // namespace ckpt::reader
