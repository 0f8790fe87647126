// timerfds: clock, settime flags, interval, time to the next expiry and
// the expirations not read yet, stored as a TimerFdState; restore makes a
// new timerfd with them (reader/src/fd_kinds/timerfd.cc).
#include "fd_kind.h"

#include "../procfs.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sys/syscall.h>
#include <sys/timerfd.h>

namespace ckpt::writer {

namespace {

img::u64 to_ns(const timespec &t) { return img::u64(t.tv_sec) * 1000000000ull + img::u64(t.tv_nsec); }

bool parse_number(const std::optional<std::string> &v, int base, unsigned long long &out) {
  if (!v || v->empty()) return false;
  char *end = nullptr;
  errno = 0;
  out = strtoull(v->c_str(), &end, base);
  return errno == 0 && end != v->c_str();
}

}  // namespace

bool recognizes_timerfd(const FdProbe &p) { return is_anon_inode(p.link) && p.link.substr(11) == "[timerfd]"; }

img::Status capture_timerfd(pid_t pid, FdInfo &fi) {
  int fd = fi.record.fd;
  // The target's own open file description, through pidfd_getfd: an
  // interval timer that expired more than once since its last read shows
  // "ticks: 1" and an it_value of 0 in fdinfo, because the kernel counts
  // the missed intervals only when it is read or asked for its time
  // (fs/timerfd.c: timerfd_gettime forwards the hrtimer and adds the
  // overruns to ctx->ticks). timerfd_gettime on our copy does that count
  // without consuming anything, so fdinfo afterwards shows the true ticks.
  UniqueFd pidfd(int(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return img::make_error("%s: timerfd: pidfd_open: %s", fd_where(pid, fd).c_str(), strerror(errno));
  UniqueFd copy(int(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
  if (!copy.valid()) return img::make_error("%s: timerfd: pidfd_getfd: %s", fd_where(pid, fd).c_str(), strerror(errno));
  itimerspec its{};
  if (timerfd_gettime(copy.get(), &its) != 0)
    return img::make_error("%s: timerfd_gettime: %s", fd_where(pid, fd).c_str(), strerror(errno));
  std::string path = "/proc/self/fdinfo/" + std::to_string(copy.get());
  auto text = read_file(path);
  if (!text) return text.error().context(fd_where(pid, fd));
  unsigned long long clock = 0, ticks = 0, flags = 0;
  // fs/timerfd.c timerfd_show: "clockid: %d", "ticks: %llu", "settime
  // flags: 0%o" (octal).
  if (!parse_number(fdinfo_value(*text, "clockid"), 10, clock) || !parse_number(fdinfo_value(*text, "ticks"), 10, ticks) ||
      !parse_number(fdinfo_value(*text, "settime flags"), 8, flags))
    return img::make_error("%s: timerfd: fdinfo has no clockid/ticks/settime flags line", fd_where(pid, fd).c_str());
  img::TimerFdState state{};
  state.header = {sizeof state, img::TimerFdState::kVersion};
  state.clock_id = static_cast<img::i32>(clock);
  state.settime_flags = static_cast<img::u32>(flags);
  state.ticks = ticks;
  state.value_ns = to_ns(its.it_value);
  state.interval_ns = to_ns(its.it_interval);
  // TFD_TIMER_ABSTIME keeps its absolute expiry (a deadline on the wall
  // clock stays that deadline); timerfd_gettime gives the time left.
  if (state.value_ns && (flags & TFD_TIMER_ABSTIME)) {
    timespec now{};
    if (clock_gettime(static_cast<clockid_t>(clock), &now) != 0)
      return img::make_error("%s: timerfd: clock_gettime(%llu): %s", fd_where(pid, fd).c_str(), clock, strerror(errno));
    state.expiry_ns = static_cast<img::i64>(to_ns(now) + state.value_ns);
  }
  fi.state = img::fd_state_bytes(state);
  return img::Status::ok();
}

}  // namespace ckpt::writer
