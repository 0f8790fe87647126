// The fd kind registry's libimg part (fd_kinds.h): names and restore policy.
#include <ckpt/img/fd_kinds.h>

#include <ckpt/img/fd_states.h>
#include <ckpt/img/restorable.h>

#include <cstdio>
#include <utility>
#include <sys/sysmacros.h>

namespace ckpt::img {

namespace {

// "1 watch", "3 watches".
std::string count_of(size_t n, const char *one, const char *many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string restorable(const FdRecord &, std::string_view) { return ""; }

// An unlinked name of a file that still has other names, none of which the
// dump found: a copy made from its bytes would no longer be that file.
std::string regular_refusal(const FdRecord &r, std::string_view path) {
  if ((r.flags & kFdUnlinked) && (r.flags & kFdLinkedElsewhere))
    return "file " + std::string(path) + " (unlinked, but still linked under a name in another folder)";
  return "";
}

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
  // /dev/ptmx is 5:2; an open master also shows that rdev. It comes back
  // as a new pair from its TtyState (with its slave fds, when the same
  // process holds them: tty_state_refusal); an older writer stored none.
  if (ma == 5 && mi == 2) return r.state.length ? "" : "pty master " + p + " (its state was not captured)";
  // Unix98 pty slaves (majors 136..143): with their master (above).
  // kFdTerminal marks the terminal the program was run from, which
  // restore reconnects (DECISIONS.md 27).
  if (ma >= 136 && ma <= 143)
    return r.state.length ? "" : "pty " + p + " (not the terminal it was run from)";
  // Consoles and serial lines (4:N) and /dev/console (5:1) are the same
  // device when reopened: the termios and window size live in the device,
  // not in the open file. Reopened by path, checked to be the same rdev
  // (decision 146). /dev/tty (5:0) without a controlling terminal cannot
  // be open at all.
  if (ma == 4 || (ma == 5 && mi == 1)) return "";
  if (ma == 5 && mi == 0) return "terminal " + p + " (not the terminal it was run from)";
  return "character device " + p + " (" + std::to_string(ma) + ":" + std::to_string(mi) + ")";
}

// An eventfd comes back from its state (EventFdState); an image without
// one (an older writer's, dumped with --allow-unrestorable) cannot give
// the counter back.
std::string eventfd_refusal(const FdRecord &r, std::string_view) {
  return r.state.length ? "" : "eventfd (its counter was not captured)";
}

std::string no_state(const Table<FdRecord> &, const FdRecord &) { return ""; }

// A recreated file's owner and data extents; nothing for a file reopened
// by path (or an older writer's recreated file, which has no state).
std::string recreated_file_description(const Table<FdRecord> &fds, const FdRecord &r) {
  if (!r.state.length) return "";
  auto s = recreated_file_state(fds, r);
  if (!s) return "state unreadable: " + s.error().message();
  u64 data = 0;
  for (const DataExtent &e : s->extents) data += e.length;
  std::string out = "owner " + std::to_string(s->fixed.uid) + ":" + std::to_string(s->fixed.gid);
  if (data != r.size) out += ", " + std::to_string(data) + " of " + std::to_string(r.size) + " bytes data (sparse)";
  return out;
}

std::string eventfd_state(const Table<FdRecord> &fds, const FdRecord &r) {
  auto s = fd_state<EventFdState>(fds, r);
  if (!s) return "state unreadable: " + s.error().message();
  return "count " + std::to_string(s->count) + ((s->flags & kEventFdSemaphore) ? ", semaphore" : "");
}

// Kinds that come back from their state (TimerFdState, SignalFdState,
// InotifyState): an image without one (an older writer's, dumped with
// --allow-unrestorable) cannot give their settings back.
std::string timerfd_refusal(const FdRecord &r, std::string_view) {
  return r.state.length ? "" : "timerfd (its settings were not captured)";
}
std::string signalfd_refusal(const FdRecord &r, std::string_view) {
  return r.state.length ? "" : "signalfd (its mask was not captured)";
}
std::string inotify_refusal(const FdRecord &r, std::string_view) {
  return r.state.length ? "" : "inotify (its watches were not captured)";
}

std::string timerfd_state(const Table<FdRecord> &fds, const FdRecord &r) {
  auto s = fd_state<TimerFdState>(fds, r);
  if (!s) return "state unreadable: " + s.error().message();
  std::string out = "clock " + std::to_string(s->clock_id);
  out += s->value_ns ? ", next in " + std::to_string(s->value_ns) + " ns" : ", disarmed";
  if (s->interval_ns) out += ", interval " + std::to_string(s->interval_ns) + " ns";
  out += ", ticks " + std::to_string(s->ticks);
  if (s->settime_flags & 1) out += ", abstime";
  if (s->settime_flags & 2) out += ", cancel on set";
  return out;
}

std::string signalfd_state(const Table<FdRecord> &fds, const FdRecord &r) {
  auto s = fd_state<SignalFdState>(fds, r);
  if (!s) return "state unreadable: " + s.error().message();
  char buf[40];
  std::snprintf(buf, sizeof buf, "sigmask %016llx", (unsigned long long)s->sigmask);
  return buf;
}

std::string inotify_state(const Table<FdRecord> &fds, const FdRecord &r) {
  auto w = inotify_watches(fds, r);
  if (!w) return "state unreadable: " + w.error().message();
  std::string out = count_of(w->size(), "watch", "watches");
  char buf[64];
  for (size_t i = 0; i < w->size(); i++) {
    std::snprintf(buf, sizeof buf, "wd %d mask %#x ", (*w)[i].watch.wd, (*w)[i].watch.mask);
    out += (i ? ", " : ": ") + std::string(buf) + (*w)[i].path;
  }
  return out;
}

// Kinds restore does not bring back yet: refused by the name the kernel
// gives them.
std::string block_device_refusal(const FdRecord &, std::string_view) { return "block device"; }
// Kernel objects of other kinds, each refused with why (by the link the
// kernel gives them, /proc/PID/fd/N).
std::string other_refusal(const FdRecord &, std::string_view path) {
  static const std::pair<std::string_view, std::string_view> kWhy[] = {
      {"anon_inode:[io_uring]", "io_uring instance (its rings and requests in flight cannot be captured)"},
      {"anon_inode:[perf_event]", "perf_event (a counter the kernel keeps, which cannot be recreated with its count)"},
      {"anon_inode:bpf-map", "bpf map (a kernel object shared beyond the process)"},
      {"anon_inode:bpf-prog", "bpf program (a kernel object shared beyond the process)"},
      {"anon_inode:bpf_link", "bpf link (a kernel object shared beyond the process)"},
      {"anon_inode:[userfaultfd]", "userfaultfd of the program's own (its registrations and pending faults)"},
      {"anon_inode:[pidfd]", "pidfd (it names a process that may not exist after restore)"},
      {"anon_inode:[fanotify]", "fanotify (its marks and permission events cannot be captured)"},
  };
  for (auto [link, why] : kWhy)
    if (path == link) return std::string(why);
  if (path.substr(0, 11) == "anon_inode:") return std::string(path) + " (a kernel object restore does not know)";
  return path.empty() ? "of an unknown kind" : std::string(path);
}

// AF_UNIX sockets come back from their state (UnixSocketState), TCP and
// UDP ones from theirs (InetSocketState); other families have none. What of a captured one cannot come back (a peer
// outside the image, descriptors in flight...) the writer marks in its
// flags: socket_state_refusal.
std::string socket_refusal(const FdRecord &r, std::string_view) {
  return r.state.length ? "" : "socket (only AF_UNIX, TCP and UDP sockets are restored)";
}

std::string unix_flag_refusal(u32 flags, u32 sock_type) {
  std::string kind = "AF_UNIX " + unix_socket_type_name(sock_type) + " socket";
  if (flags & kUnixPeerOutside) return kind + " connected to a peer outside the dumped processes";
  if (flags & kUnixRightsInFlight) return kind + " with file descriptors in flight (SCM_RIGHTS queued)";
  if (flags & kUnixPendingConnections) return "listening " + kind + " with connections not yet accepted";
  if (flags & kUnixOneWayPeer) return kind + " connected to a socket that is not connected back";
  return "";
}

std::string socket_state(const Table<FdRecord> &fds, const FdRecord &r) {
  if (!r.state.length) return "";
  if (is_inet_socket_state(fds, r)) {
    auto i = inet_socket_state(fds, r);
    return i ? inet_socket_text(*i) : "state unreadable: " + i.error().message();
  }
  auto u = unix_socket_state(fds, r);
  if (!u) return "state unreadable: " + u.error().message();
  const UnixSocketState &s = u->fixed;
  std::string out = "unix " + unix_socket_type_name(s.sock_type);
  if (s.flags & kUnixListening) out += ", listening (backlog " + std::to_string(s.backlog) + ")";
  if (!u->name.empty()) out += ", bound to " + unix_socket_printable_name(u->name);
  if (s.flags & kUnixPeerClosed) out += ", peer closed";
  else if (s.peer_ino) out += ", peer socket:[" + std::to_string(s.peer_ino) + "]";
  if (s.shutdown & 1) out += ", shut down for reading";
  if (s.shutdown & 2) out += ", shut down for writing";
  if (s.flags & kUnixPassCred) out += ", SO_PASSCRED";
  if (s.message_count)
    out += ", " + std::to_string(s.queued_bytes) + " bytes queued" +
           (s.sock_type == 1 ? "" : " in " + std::to_string(s.message_count) + " messages");
  if (std::string why = unix_flag_refusal(s.flags, s.sock_type); !why.empty()) out += " (refused: " + why + ")";
  return out;
}

std::string socket_state_refusal(const Table<FdRecord> &fds, const FdRecord &r) {
  if (!r.state.length) return "";
  if (is_inet_socket_state(fds, r)) {
    auto i = inet_socket_state(fds, r);
    return i ? inet_socket_refusal(i->fixed) : "socket whose state is unreadable (" + i.error().message() + ")";
  }
  auto u = unix_socket_state(fds, r);
  if (!u) return "socket whose state is unreadable (" + u.error().message() + ")";
  return unix_flag_refusal(u->fixed.flags, u->fixed.sock_type);
}

std::string epoll_refusal(const FdRecord &r, std::string_view) {
  return r.state.length ? "" : "eventpoll (its interest list was not captured)";
}

// A target that the process closed (or replaced by another file) while it
// stayed in the interest set: epoll_ctl() can only add an open fd.
std::string epoll_state_refusal(const Table<FdRecord> &fds, const FdRecord &r) {
  if (!r.state.length) return "";
  auto targets = epoll_state(fds, r);
  if (!targets) return "eventpoll whose state is unreadable (" + targets.error().message() + ")";
  for (const EpollTarget &t : *targets)
    if (!(t.flags & kEpollTargetOpen))
      return "eventpoll whose target fd " + std::to_string(t.tfd) + " was closed but is still in its interest set";
  return "";
}

std::string epoll_state_text(const Table<FdRecord> &fds, const FdRecord &r) {
  auto targets = epoll_state(fds, r);
  if (!targets) return "state unreadable: " + targets.error().message();
  std::string out = count_of(targets->size(), "target", "targets");
  char buf[96];
  for (size_t i = 0; i < targets->size(); i++) {
    const EpollTarget &t = (*targets)[i];
    std::snprintf(buf, sizeof buf, "%s fd %d events 0x%x data 0x%llx%s", i ? ";" : ":", t.tfd, t.events,
                  (unsigned long long)t.data, (t.flags & kEpollTargetOpen) ? "" : " (closed)");
    out += buf;
  }
  return out;
}

constexpr std::array<FdKindInfo, kFdTypeCount> kFdKinds = {{
    {FdType::Regular, "regular", FdSharing::FileId, regular_refusal, recreated_file_description},
    {FdType::Directory, "directory", FdSharing::FileId, restorable, no_state},
    {FdType::PipeRead, "pipe_read", FdSharing::PipeId, restorable, no_state},
    {FdType::PipeWrite, "pipe_write", FdSharing::PipeId, restorable, no_state},
    {FdType::Fifo, "fifo", FdSharing::FileId, restorable, no_state},
    {FdType::CharDevice, "char_device", FdSharing::FileId, char_device_refusal, tty_state_text, tty_state_refusal},
    {FdType::BlockDevice, "block_device", FdSharing::FileId, block_device_refusal, no_state},
    {FdType::Socket, "socket", FdSharing::FileId, socket_refusal, socket_state, socket_state_refusal},
    {FdType::EventFd, "eventfd", FdSharing::FileId, eventfd_refusal, eventfd_state},
    {FdType::SignalFd, "signalfd", FdSharing::FileId, signalfd_refusal, signalfd_state},
    {FdType::TimerFd, "timerfd", FdSharing::FileId, timerfd_refusal, timerfd_state},
    {FdType::Epoll, "epoll", FdSharing::FileId, epoll_refusal, epoll_state_text, epoll_state_refusal},
    {FdType::Inotify, "inotify", FdSharing::FileId, inotify_refusal, inotify_state},
    {FdType::MemFd, "memfd", FdSharing::FileId, memfd_refusal, recreated_file_description},
    {FdType::Other, "other", FdSharing::FileId, other_refusal, no_state},
}};
static_assert(covers_every_fd_type(kFdKinds), "every FdType needs its libimg entry (name, sharing, refusal)");

}  // namespace

const FdKindInfo *fd_kind_info(u32 type) { return type < kFdKinds.size() ? &kFdKinds[type] : nullptr; }

bool is_pipe_end(FdType t) {
  const FdKindInfo *k = fd_kind_info(static_cast<u32>(t));
  return k && k->sharing == FdSharing::PipeId;
}

std::vector<u8> inotify_state_bytes(const std::vector<InotifyWatchEntry> &watches) {
  InotifyState head{};
  head.header.version = InotifyState::kVersion;
  head.watch_count = static_cast<u32>(watches.size());
  std::vector<u8> out(sizeof head);
  for (const InotifyWatchEntry &e : watches) {
    InotifyWatch w = e.watch;
    w.path_length = static_cast<u32>(e.path.size());
    w.pad0 = 0;
    size_t at = out.size();
    out.resize(at + sizeof w + ((e.path.size() + 7) & ~size_t(7)), 0);
    std::memcpy(out.data() + at, &w, sizeof w);
    std::memcpy(out.data() + at + sizeof w, e.path.data(), e.path.size());
  }
  head.header.size = static_cast<u32>(out.size());
  std::memcpy(out.data(), &head, sizeof head);
  return out;
}

Expected<std::vector<InotifyWatchEntry>> inotify_watches(const Table<FdRecord> &fds, const FdRecord &r) {
  auto head = fd_state<InotifyState>(fds, r);
  if (!head) return head.error();
  auto bytes = fds.blob(r.state);
  if (!bytes) return bytes.error();
  // A later version's longer header would be refused by fd_state; the
  // watches start right after this one.
  size_t at = sizeof(InotifyState);
  std::vector<InotifyWatchEntry> out;
  for (u32 i = 0; i < head->watch_count; i++) {
    InotifyWatchEntry e;
    if (bytes->size() - at < sizeof e.watch)
      return make_error("fd %d: inotify state ends inside watch %u of %u", r.fd, i, head->watch_count);
    std::memcpy(&e.watch, bytes->data() + at, sizeof e.watch);
    at += sizeof e.watch;
    size_t padded = (size_t(e.watch.path_length) + 7) & ~size_t(7);
    if (bytes->size() - at < padded)
      return make_error("fd %d: inotify watch %d's path runs past the state", r.fd, e.watch.wd);
    e.path.assign(reinterpret_cast<const char *>(bytes->data() + at), e.watch.path_length);
    at += padded;
    if (!out.empty() && e.watch.wd <= out.back().watch.wd)
      return make_error("fd %d: inotify watches not in ascending wd order (%d after %d)", r.fd, e.watch.wd,
                        out.back().watch.wd);
    out.push_back(std::move(e));
  }
  if (at != bytes->size()) return make_error("fd %d: %zu stray bytes after the inotify watches", r.fd, bytes->size() - at);
  return out;
}

const char *fd_kind_name(u32 type) { return type < kFdKinds.size() ? kFdKinds[type].name : "unknown"; }

}  // namespace ckpt::img
