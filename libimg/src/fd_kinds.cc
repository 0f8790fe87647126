// The fd kind registry's libimg part (fd_kinds.h): names and restore policy.
#include <ckpt/img/fd_kinds.h>

#include <ckpt/img/restorable.h>

#include <sys/sysmacros.h>

namespace ckpt::img {

namespace {

std::string restorable(const FdRecord &, std::string_view) { return ""; }

// A memfd is recreated from its bytes; an image whose writer left them out
// (content empty for a non-empty file) cannot give them back.
std::string memfd_refusal(const FdRecord &r, std::string_view path) {
  if (r.content.length == 0 && r.size != 0) return "memfd " + std::string(path) + " (contents not captured)";
  return "";
}

// Names a character device restore cannot reopen faithfully.
std::string char_device_refusal(const FdRecord &r, std::string_view path) {
  if ((r.flags & kFdTerminal) || is_stateless_char_device(r.rdev)) return "";
  unsigned ma = major(r.rdev), mi = minor(r.rdev);
  std::string p(path);
  // /dev/ptmx is 5:2; an open master also shows that rdev. Reopening it
  // would make a fresh, unrelated pty pair.
  if (ma == 5 && mi == 2) return "pty master " + p;
  // Unix98 pty slaves (majors 136..143), consoles and serial lines (4),
  // /dev/tty (5:0), /dev/console (5:1): kFdTerminal marks the terminal the
  // program was run from, which restore reconnects (DECISIONS.md 27); any
  // other one is the process's own, and reconnecting it would lose its
  // other end, settings and queued bytes.
  if (ma >= 136 && ma <= 143) return "pty " + p + " (not the terminal it was run from)";
  if (ma == 4 || (ma == 5 && mi <= 1)) return "terminal " + p + " (not the terminal it was run from)";
  return "character device " + p + " (" + std::to_string(ma) + ":" + std::to_string(mi) + ")";
}

// An eventfd comes back from its state (EventFdState); an image without
// one (an older writer's, dumped with --allow-unrestorable) cannot give
// the counter back.
std::string eventfd_refusal(const FdRecord &r, std::string_view) {
  return r.state.length ? "" : "eventfd (its counter was not captured)";
}

std::string no_state(const Table<FdRecord> &, const FdRecord &) { return ""; }

std::string eventfd_state(const Table<FdRecord> &fds, const FdRecord &r) {
  auto s = fd_state<EventFdState>(fds, r);
  if (!s) return "state unreadable: " + s.error().message();
  return "count " + std::to_string(s->count) + ((s->flags & kEventFdSemaphore) ? ", semaphore" : "");
}

// Kinds restore does not bring back yet: refused by the name the kernel
// gives them.
std::string block_device_refusal(const FdRecord &, std::string_view) { return "block device"; }
std::string socket_refusal(const FdRecord &, std::string_view) { return "socket"; }
std::string signalfd_refusal(const FdRecord &, std::string_view) { return "signalfd"; }
std::string timerfd_refusal(const FdRecord &, std::string_view) { return "timerfd"; }
std::string epoll_refusal(const FdRecord &, std::string_view) { return "eventpoll"; }
std::string inotify_refusal(const FdRecord &, std::string_view) { return "inotify"; }
std::string other_refusal(const FdRecord &, std::string_view path) {
  return path.empty() ? "of an unknown kind" : std::string(path);
}

constexpr std::array<FdKindInfo, kFdTypeCount> kFdKinds = {{
    {FdType::Regular, "regular", FdSharing::FileId, restorable, no_state},
    {FdType::Directory, "directory", FdSharing::FileId, restorable, no_state},
    {FdType::PipeRead, "pipe_read", FdSharing::PipeId, restorable, no_state},
    {FdType::PipeWrite, "pipe_write", FdSharing::PipeId, restorable, no_state},
    {FdType::Fifo, "fifo", FdSharing::FileId, restorable, no_state},
    {FdType::CharDevice, "char_device", FdSharing::FileId, char_device_refusal, no_state},
    {FdType::BlockDevice, "block_device", FdSharing::FileId, block_device_refusal, no_state},
    {FdType::Socket, "socket", FdSharing::FileId, socket_refusal, no_state},
    {FdType::EventFd, "eventfd", FdSharing::FileId, eventfd_refusal, eventfd_state},
    {FdType::SignalFd, "signalfd", FdSharing::FileId, signalfd_refusal, no_state},
    {FdType::TimerFd, "timerfd", FdSharing::FileId, timerfd_refusal, no_state},
    {FdType::Epoll, "epoll", FdSharing::FileId, epoll_refusal, no_state},
    {FdType::Inotify, "inotify", FdSharing::FileId, inotify_refusal, no_state},
    {FdType::MemFd, "memfd", FdSharing::FileId, memfd_refusal, no_state},
    {FdType::Other, "other", FdSharing::FileId, other_refusal, no_state},
}};
static_assert(covers_every_fd_type(kFdKinds), "every FdType needs its libimg entry (name, sharing, refusal)");

}  // namespace

const FdKindInfo *fd_kind_info(u32 type) { return type < kFdKinds.size() ? &kFdKinds[type] : nullptr; }

bool is_pipe_end(FdType t) {
  const FdKindInfo *k = fd_kind_info(static_cast<u32>(t));
  return k && k->sharing == FdSharing::PipeId;
}

const char *fd_kind_name(u32 type) { return type < kFdKinds.size() ? kFdKinds[type].name : "unknown"; }

}  // namespace ckpt::img
