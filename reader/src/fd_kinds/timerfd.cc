// timerfds: a new timerfd on the stored clock, armed with the time that
// was left (or, with TFD_TIMER_ABSTIME, the same absolute expiry) and the
// interval, holding the expirations that were not read yet.
#include "fd_kind.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <linux/ioctl.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

// Linux 3.17's TFD_IOC_SET_TICKS (fs/timerfd.c, only with
// CONFIG_CHECKPOINT_RESTORE): sets the count of unread expirations, which
// no other call can. Older libc headers lack it.
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

namespace ckpt::reader {

using namespace img;

namespace {

timespec from_ns(u64 ns) { return timespec{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)}; }

}  // namespace

Expected<int> open_timerfd(FdOpenContext &c, const FdRecord &r) {
  auto state = fd_state<TimerFdState>(c.view.fds, r);
  if (!state) return state.error().context("fd " + std::to_string(r.fd) + " (timerfd)");
  int fd = timerfd_create(state->clock_id, TFD_CLOEXEC | TFD_NONBLOCK);
  if (fd < 0) return make_error("fd %d: timerfd_create(clock %d): %s", r.fd, state->clock_id, strerror(errno));
  itimerspec its{};
  its.it_interval = from_ns(state->interval_ns);
  if (state->value_ns)
    its.it_value = from_ns((state->settime_flags & TFD_TIMER_ABSTIME) ? u64(state->expiry_ns) : state->value_ns);
  // Settime clears the tick count, so the ticks come after it.
  if (timerfd_settime(fd, int(state->settime_flags), &its, nullptr) != 0) {
    int e = errno;
    close(fd);
    return make_error("fd %d: timerfd_settime(flags %#x): %s", r.fd, state->settime_flags, strerror(e));
  }
  u64 ticks = state->ticks;
  if (ticks && ioctl(fd, TFD_IOC_SET_TICKS, &ticks) != 0) {
    int e = errno;
    close(fd);
    return make_error("fd %d: cannot give the timerfd its %llu unread expirations (TFD_IOC_SET_TICKS needs "
                      "CONFIG_CHECKPOINT_RESTORE): %s",
                      r.fd, (unsigned long long)ticks, strerror(e));
  }
  return with_status_flags(fd, r, "timerfd");
}

}  // namespace ckpt::reader
