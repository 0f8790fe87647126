// epoll: a new epoll instance, and its targets added by fd number once
// every fd of the process is in place (ReaderFdKind::after_placed), with
// their events (EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE included) and data.
// Readiness is the targets' own: the kernel re-evaluates it on the add.
#include "fd_kind.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <ckpt/img/fd_states.h>

namespace ckpt::reader {

using namespace img;

Expected<int> open_epoll(FdOpenContext &, const FdRecord &r) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return make_error("fd %d: epoll_create1: %s", r.fd, strerror(errno));
  return with_status_flags(fd, r, "epoll");
}

namespace {

// EP_PRIVATE_BITS of fs/eventpoll.c: what a one-shot entry keeps of its
// events once it fired.
constexpr u32 kPrivateBits = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;

bool is_fired_one_shot(const EpollTarget &t) { return (t.events & EPOLLONESHOT) && !(t.events & ~kPrivateBits); }

// A one-shot entry that fired has no events left, but EPOLL_CTL_ADD (and
// MOD) always add EPOLLERR|EPOLLHUP: it cannot be added disabled. It is
// added with every event instead, into the epoll while it holds no other
// entry that could report, and fired by an epoll_wait, which leaves
// exactly the original's events (kernel quirk: ep_insert's forced bits).
Status add_fired_one_shot(const FdRecord &r, const EpollTarget &t) {
  epoll_event ev{};
  ev.events = t.events | EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP;
  ev.data.u64 = t.data;
  if (epoll_ctl(r.fd, EPOLL_CTL_ADD, t.tfd, &ev) < 0) {
    if (errno == EEXIST) return {};
    return make_error("fd %d: cannot add target fd %d to the epoll: %s", r.fd, t.tfd, strerror(errno));
  }
  epoll_event got{};
  int n;
  do n = epoll_wait(r.fd, &got, 1, 0);
  while (n < 0 && errno == EINTR);
  if (n != 1 || got.data.u64 != t.data)
    return make_error("fd %d: the fired EPOLLONESHOT entry of fd %d cannot be made again: its target is not ready "
                      "for any event",
                      r.fd, t.tfd);
  return {};
}

}  // namespace

Status add_epoll_targets(const CkptView &v, const FdRecord &r) {
  auto targets = epoll_state(v.fds, r);
  if (!targets) return targets.error();
  for (const EpollTarget &t : *targets)
    if ((t.flags & kEpollTargetOpen) && is_fired_one_shot(t)) CKPT_TRY(add_fired_one_shot(r, t));
  for (const EpollTarget &t : *targets) {
    if (is_fired_one_shot(t)) continue;
    // Only targets that were still open at their number come back (dump
    // refuses the others); in a tree each process holding the epoll adds
    // those that are its own: EEXIST means another holder did already.
    if (!(t.flags & kEpollTargetOpen)) continue;
    epoll_event ev{};
    ev.events = t.events;
    ev.data.u64 = t.data;
    if (epoll_ctl(r.fd, EPOLL_CTL_ADD, t.tfd, &ev) < 0 && errno != EEXIST)
      return make_error("fd %d: cannot add target fd %d (events 0x%x) to the epoll: %s", r.fd, t.tfd, t.events,
                        strerror(errno));
  }
  return {};
}

}  // namespace ckpt::reader
