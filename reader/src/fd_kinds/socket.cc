// AF_UNIX sockets from their UnixSocketState. A connected socket and its
// peer come back as one socketpair() (whatever made them: socketpair,
// connect+accept), each end refilled with its queued messages by writing
// them into the other end, so that boundaries stay; then options and
// shutdown state. A listener or bound socket is bound to its name again
// (a stale socket file left by the dumped process is replaced; a live one
// is refused: docs/DECISIONS.md) and listens with its backlog.
#include "fd_kind.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>

#include <ckpt/img/fd_states.h>

namespace ckpt::reader {

using namespace img;

namespace {

std::string cwd_of(const CkptView &v) {
  return v.tasks.records.empty() ? std::string("/") : std::string(v.tasks.str_or_empty(v.tasks.records[0].cwd));
}

bool is_path_name(const std::string &name) { return !name.empty() && name[0] != '\0'; }

// A path name as it resolves for the dumped process: relative names were
// bound relative to its working directory.
std::string absolute(const CkptView &v, const std::string &name) {
  return name[0] == '/' ? name : cwd_of(v) + "/" + name;
}

Expected<sockaddr_un> address_of(int fd, const std::string &name, socklen_t &len) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (name.size() > sizeof a.sun_path) return make_error("fd %d: socket name of %zu bytes is too long", fd, name.size());
  std::memcpy(a.sun_path, name.data(), name.size());
  len = socklen_t(offsetof(sockaddr_un, sun_path) + name.size());
  return a;
}

// True when a socket that is open now is bound to `path` (or to `name`,
// as a relative name was bound): /proc/net/unix lists every bound socket
// of this network namespace with its name, last on its line. Read, not
// probed with connect(), which would queue a connection on a live
// listener that its program would then accept.
bool bound_by_a_live_socket(const std::string &path, const std::string &name) {
  FILE *f = fopen("/proc/net/unix", "re");
  if (!f) return false;
  char *line = nullptr;
  size_t cap = 0;
  bool found = false;
  // "Num RefCount Protocol Flags Type St Inode Path": seven fields, then the path.
  while (!found && getline(&line, &cap, f) > 0) {
    std::string l(line);
    if (!l.empty() && l.back() == '\n') l.pop_back();
    size_t at = 0;
    for (int field = 0; field < 7 && at != std::string::npos; field++) {
      at = l.find_first_not_of(' ', at);
      at = at == std::string::npos ? at : l.find(' ', at);
    }
    if (at == std::string::npos) continue;
    std::string bound = l.substr(at + 1);
    found = bound == path || bound == name;
  }
  free(line);
  fclose(f);
  return found;
}

// Whether a path-bound socket's name is free for bind(): nothing there,
// or a socket file no open socket is bound to. That stale file is what
// the dumped process leaves behind when it dies: with `fix` it is removed.
// Anything else is refused.
Status path_name_free(const std::string &path, const std::string &name, int fd, bool fix) {
  struct stat st;
  if (lstat(path.c_str(), &st) < 0) {
    if (errno == ENOENT) return {};
    return make_error("fd %d: socket path %s: %s", fd, path.c_str(), strerror(errno));
  }
  if (!S_ISSOCK(st.st_mode)) return make_error("fd %d: socket path %s exists and is not a socket", fd, path.c_str());
  if (bound_by_a_live_socket(path, name))
    return make_error("fd %d: socket path %s is in use by a live socket (is the dumped process still running?)", fd,
                      path.c_str());
  if (fix && unlink(path.c_str()) < 0 && errno != ENOENT)
    return make_error("fd %d: cannot remove the stale socket file %s: %s", fd, path.c_str(), strerror(errno));
  return {};
}

Status bind_name(const CkptView &v, int sock, const FdRecord &r, const UnixSocket &u) {
  socklen_t len;
  auto a = address_of(r.fd, u.name, len);
  if (!a) return a.error();
  std::string printable = unix_socket_printable_name(u.name);
  if (is_path_name(u.name)) CKPT_TRY(path_name_free(absolute(v, u.name), u.name, r.fd, true));
  // A relative name is bound relative to the process's working directory,
  // so that getsockname() reads as it did.
  Closer here{-1};
  if (is_path_name(u.name) && u.name[0] != '/') {
    here.fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (chdir(cwd_of(v).c_str()) < 0)
      return make_error("fd %d: cannot change to %s to bind %s: %s", r.fd, cwd_of(v).c_str(), printable.c_str(),
                        strerror(errno));
  }
  int bound = bind(sock, reinterpret_cast<const sockaddr *>(&*a), len);
  int e = errno;
  if (here.fd >= 0) (void)!fchdir(here.fd);
  if (bound < 0) return make_error("fd %d: cannot bind the socket to %s: %s", r.fd, printable.c_str(), strerror(e));
  if (is_path_name(u.name) && u.fixed.file_mode && chmod(absolute(v, u.name).c_str(), u.fixed.file_mode) < 0)
    return make_error("fd %d: chmod %s: %s", r.fd, printable.c_str(), strerror(errno));
  return {};
}

void set_buffer(int sock, int force, int plain, u32 reported) {
  // getsockopt reports twice what was set (the kernel's bookkeeping
  // allowance); *BUFFORCE (CAP_NET_ADMIN) passes net.core.[rw]mem_max.
  int v = int(reported / 2);
  if (setsockopt(sock, SOL_SOCKET, force, &v, sizeof v) < 0) setsockopt(sock, SOL_SOCKET, plain, &v, sizeof v);
}

Status apply_options(int sock, const FdRecord &r, const UnixSocketState &s) {
  if (s.rcvbuf) set_buffer(sock, SO_RCVBUFFORCE, SO_RCVBUF, s.rcvbuf);
  if (s.sndbuf) set_buffer(sock, SO_SNDBUFFORCE, SO_SNDBUF, s.sndbuf);
  int on = 1;
  if ((s.flags & kUnixPassCred) && setsockopt(sock, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0)
    return make_error("fd %d: SO_PASSCRED: %s", r.fd, strerror(errno));
  if (s.peek_off >= 0 && setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &s.peek_off, sizeof s.peek_off) < 0)
    return make_error("fd %d: SO_PEEK_OFF: %s", r.fd, strerror(errno));
  if (fcntl(sock, F_SETFL, reopen_flags(r) & (O_NONBLOCK | O_ASYNC)) < 0)
    return make_error("fd %d: socket status flags: %s", r.fd, strerror(errno));
  return {};
}

// Room in `sock`'s send buffer for `u`'s messages at once (written
// non-blocking, so a shortfall fails instead of hanging the restore).
void make_room(int sock, const UnixSocket &u) {
  u64 need = 2 * u.fixed.queued_bytes + u64(u.messages.size()) * 2048 + (1u << 20);
  int v = need > (1u << 30) ? (1 << 30) : int(need);
  setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v);
}

// Writes u's queued messages into `from`, so they land in its peer's
// receive queue: one send per message keeps datagram and seqpacket
// boundaries; a stream's bytes are one run.
Status send_messages(int from, const UnixSocket &u, const FdRecord &r, const sockaddr_un *to, socklen_t to_len) {
  for (std::span<const u8> m : u.messages) {
    size_t done = 0;
    do {
      ssize_t n = to ? sendto(from, m.data() + done, m.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL,
                              reinterpret_cast<const sockaddr *>(to), to_len)
                     : send(from, m.data() + done, m.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        return make_error("fd %d: cannot queue its %zu-byte message again: %s", r.fd, m.size(), strerror(errno));
      done += size_t(n);
    } while (done < m.size() && u.fixed.sock_type == SOCK_STREAM);
  }
  return {};
}

Status shut_down(int sock, const FdRecord &r, u32 shutdown_bits) {
  // sk_shutdown: RCV_SHUTDOWN 1, SEND_SHUTDOWN 2. shutdown() of one end
  // also marks the peer's opposite side, as the original's did.
  int how = (shutdown_bits & 3) == 3 ? SHUT_RDWR : (shutdown_bits & 2) ? SHUT_WR : (shutdown_bits & 1) ? SHUT_RD : -1;
  if (how >= 0 && ::shutdown(sock, how) < 0) return make_error("fd %d: shutdown: %s", r.fd, strerror(errno));
  return {};
}

}  // namespace

Expected<std::pair<int, int>> recreate_unix_pair(const CkptView &va, const FdRecord &a, const CkptView *vb,
                                                 const FdRecord *b) {
  auto ua = unix_socket_state(va.fds, a);
  if (!ua) return ua.error();
  UnixSocket ub;
  if (b) {
    auto got = unix_socket_state(vb->fds, *b);
    if (!got) return got.error();
    ub = got.take();
  }
  int sv[2];
  if (socketpair(AF_UNIX, int(ua->fixed.sock_type) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
    return make_error("fd %d: socketpair: %s", a.fd, strerror(errno));
  Closer end_a{sv[0]}, end_b{sv[1]};
  make_room(end_b.fd, *ua);
  CKPT_TRY(send_messages(end_b.fd, *ua, a, nullptr, 0));
  if (b) {
    make_room(end_a.fd, ub);
    CKPT_TRY(send_messages(end_a.fd, ub, *b, nullptr, 0));
  }
  CKPT_TRY(apply_options(end_a.fd, a, ua->fixed));
  if (b) {
    CKPT_TRY(apply_options(end_b.fd, *b, ub.fixed));
    CKPT_TRY(shut_down(end_b.fd, *b, ub.fixed.shutdown));
    CKPT_TRY(shut_down(end_a.fd, a, ua->fixed.shutdown));
  } else {
    // The peer was closed: closing our stand-in gives a the end of file
    // (stream, seqpacket) it had, after its queued bytes.
    close(end_b.release());
    if (ua->fixed.sock_type == SOCK_DGRAM) CKPT_TRY(shut_down(end_a.fd, a, ua->fixed.shutdown));
  }
  return std::make_pair(end_a.release(), end_b.release());
}

Status check_socket(const CkptView &v, const FdRecord &r, const HereNowOptions &) {
  if (is_inet_socket_state(v.fds, r)) {
    auto i = inet_socket_state(v.fds, r);
    return i ? Status{} : Status(i.error());
  }
  auto u = unix_socket_state(v.fds, r);
  if (!u) return u.error();
  if ((u->fixed.flags & kUnixConnected) || !is_path_name(u->name)) return {};
  return path_name_free(absolute(v, u->name), u->name, r.fd, false);
}

Status finish_socket(const CkptView &v, const FdRecord &r) {
  return is_inet_socket_state(v.fds, r) ? finish_inet_socket(v, r) : Status{};
}

Expected<int> open_socket(FdOpenContext &c, const FdRecord &r) {
  if (is_inet_socket_state(c.view.fds, r)) return open_inet_socket(c, r);
  auto u = unix_socket_state(c.view.fds, r);
  if (!u) return u.error();
  const UnixSocketState &s = u->fixed;
  // Made already, as the peer of a socket opened before it.
  if (auto made = c.pipes.unix_ends.find(r.ino); made != c.pipes.unix_ends.end()) {
    int fd = made->second;
    c.pipes.unix_ends.erase(made);
    return fd;
  }
  if (s.flags & kUnixConnected) {
    const FdRecord *peer = nullptr;
    if (!(s.flags & kUnixPeerClosed)) {
      for (const FdRecord &o : c.view.fds.records)
        if (static_cast<FdType>(o.type) == FdType::Socket && o.ino == s.peer_ino) peer = &o;
      if (!peer)
        return make_error("fd %d: its peer socket:[%llu] is in no fd of this process and was not made for the tree",
                          r.fd, (unsigned long long)s.peer_ino);
    }
    auto pair = recreate_unix_pair(c.view, r, peer ? &c.view : nullptr, peer);
    if (!pair) return pair.error();
    if (pair->second >= 0) c.pipes.unix_ends[s.peer_ino] = pair->second;
    return pair->first;
  }
  // Not connected: a listener, a bound datagram socket or a fresh one.
  Closer sock{socket(AF_UNIX, int(s.sock_type) | SOCK_CLOEXEC, 0)};
  if (sock.fd < 0) return make_error("fd %d: socket: %s", r.fd, strerror(errno));
  if (!u->name.empty()) CKPT_TRY(bind_name(c.view, sock.fd, r, *u));
  if ((s.flags & kUnixListening) && listen(sock.fd, int(s.backlog)) < 0)
    return make_error("fd %d: listen: %s", r.fd, strerror(errno));
  if (!u->messages.empty()) {
    // Datagrams queued on a bound, unconnected socket came from senders
    // that may be gone: a stand-in sends them to its name again.
    if (u->name.empty())
      return make_error("fd %d: %zu messages queued on an unnamed, unconnected socket", r.fd, u->messages.size());
    Closer sender{socket(AF_UNIX, int(s.sock_type) | SOCK_CLOEXEC, 0)};
    if (sender.fd < 0) return make_error("fd %d: socket: %s", r.fd, strerror(errno));
    make_room(sender.fd, *u);
    socklen_t len;
    auto to = address_of(r.fd, is_path_name(u->name) ? absolute(c.view, u->name) : u->name, len);
    if (!to) return to.error();
    CKPT_TRY(send_messages(sender.fd, *u, r, &*to, len));
  }
  CKPT_TRY(apply_options(sock.fd, r, s));
  return sock.release();
}

}  // namespace ckpt::reader
