// Sockets. AF_UNIX ones are captured into a UnixSocketState: type, name,
// peer, options and shutdown state from sock_diag (unix_diag.h) and
// getsockopt on our copy of the socket (pidfd_getfd: the same socket, not
// a new one), and the receive queue read without consuming it (MSG_PEEK,
// walked with SO_PEEK_OFF). Whether the peer is in the image is decided
// once every process is captured (unix_peers.h). TCP and UDP sockets are
// inet_socket.cc's; other families have no state and stay refused
// (libimg/src/fd_kinds.cc).
#include "fd_kind.h"

#include "inet_socket.h"
#include "unix_diag.h"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <vector>

namespace ckpt::writer {

using img::make_error;
using img::u32;

namespace {

// Closes the descriptors a peeked SCM_RIGHTS message installed in our
// process (a peek dups them) and says whether there were any.
bool drop_passed_fds(msghdr &msg) {
  bool any = false;
  for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    any = true;
    size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; i++) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      close(fd);
    }
  }
  return any;
}

/// The receive queue of `sock` (ours, the target's socket), message by
/// message for datagram and seqpacket sockets, as one run of bytes per
/// peek for stream sockets. MSG_PEEK walks on from the peek offset
/// (SO_PEEK_OFF, which AF_UNIX supports for every type); the socket's own
/// peek offset is put back after.
img::Status peek_queue(pid_t pid, int fd, int sock, u32 type, bool receive_shut,
                       std::vector<std::vector<img::u8>> &messages, bool &rights_in_flight) {
  int saved_off = socket_int_option(sock, SOL_SOCKET, SO_PEEK_OFF, -1);
  int zero = 0;
  if (setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) < 0)
    return make_error("pid %d fd %d: SO_PEEK_OFF: %s", pid, fd, strerror(errno));
  // A datagram is at most the sender's SO_SNDBUF; 4 MiB holds any with
  // the default limits (net.core.wmem_max), and a larger one says MSG_TRUNC.
  std::vector<img::u8> buf(4u << 20);
  alignas(cmsghdr) char control[CMSG_SPACE(253 * sizeof(int)) + CMSG_SPACE(64)];
  img::Status result;
  for (;;) {
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(sock, &msg, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) {
      result = make_error("pid %d fd %d: peeking at the socket's queue: %s", pid, fd, strerror(errno));
      break;
    }
    if (drop_passed_fds(msg)) {
      rights_in_flight = true;
      break;
    }
    if (msg.msg_flags & MSG_TRUNC) {
      result = make_error("pid %d fd %d: a queued datagram is larger than %zu bytes", pid, fd, buf.size());
      break;
    }
    if (n == 0) {
      // End of file: the receive side is shut down (by the peer or
      // itself) and nothing more is queued; for a stream, n == 0 means
      // nothing else. Otherwise a zero-length datagram is at the head, and
      // the peek offset cannot step over it (it would be peeked forever).
      if (type != SOCK_STREAM && !receive_shut)
        result = make_error("pid %d fd %d: a zero-length datagram is queued (not supported)", pid, fd);
      break;
    }
    if (type == SOCK_STREAM) {
      // One stream: consecutive peeks are one run of bytes.
      if (messages.empty()) messages.emplace_back();
      messages[0].insert(messages[0].end(), buf.begin(), buf.begin() + n);
    } else {
      messages.emplace_back(buf.begin(), buf.begin() + n);
    }
  }
  setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &saved_off, sizeof saved_off);
  return result;
}

}  // namespace

bool recognizes_socket(const FdProbe &p) { return !is_anon_inode(p.link) && S_ISSOCK(p.st.st_mode); }

img::Status capture_socket(pid_t pid, FdInfo &fi) {
  int fd = fi.record.fd;
  UniqueFd pidfd(int(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) return make_error("pid %d fd %d: pidfd_open: %s", pid, fd, strerror(errno));
  UniqueFd sock(int(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
  if (!sock.valid()) return make_error("pid %d fd %d: pidfd_getfd: %s", pid, fd, strerror(errno));
  int domain = socket_int_option(sock.get(), SOL_SOCKET, SO_DOMAIN, -1);
  if (domain == AF_INET || domain == AF_INET6) return capture_inet_socket(pid, sock.get(), fi);
  // Other families have no state; they are refused by kind.
  if (domain != AF_UNIX) return img::Status::ok();

  auto diag = unix_diag(fi.record.ino);
  if (!diag) return diag.error().context(fd_where(pid, fd));
  img::UnixSocketState s{};
  s.sock_type = diag->type;
  s.ino = fi.record.ino;
  s.shutdown = diag->shutdown;
  s.rcvbuf = u32(socket_int_option(sock.get(), SOL_SOCKET, SO_RCVBUF, 0));
  s.sndbuf = u32(socket_int_option(sock.get(), SOL_SOCKET, SO_SNDBUF, 0));
  s.peek_off = socket_int_option(sock.get(), SOL_SOCKET, SO_PEEK_OFF, -1);
  if (socket_int_option(sock.get(), SOL_SOCKET, SO_PASSCRED, 0)) s.flags |= img::kUnixPassCred;
  std::vector<std::vector<img::u8>> messages;
  constexpr u32 kListen = 10;  // TCP_LISTEN, as sk_state reads for a listener
  if (diag->state == kListen) {
    s.flags |= img::kUnixListening;
    s.backlog = diag->wqueue;
    // Connections waiting in the backlog are sockets no process holds yet:
    // their clients' peers would be lost.
    if (diag->rqueue) s.flags |= img::kUnixPendingConnections;
  } else {
    if (diag->has_peer) {
      s.flags |= img::kUnixConnected;
      s.peer_ino = diag->peer_ino;
      // sock_diag reports inode 0 for a peer no file holds: a closed one
      // (orphaned), or a connection still waiting in a listener's backlog
      // (an embryo socket, never had a file). Closing a stream or seqpacket
      // peer shuts this side down both ways (unix_release_sock); a datagram
      // peer is never an embryo.
      if (!diag->peer_ino) {
        constexpr u32 kShutdownMask = 3;
        if (s.sock_type == SOCK_DGRAM || diag->shutdown == kShutdownMask) s.flags |= img::kUnixPeerClosed;
        else s.flags |= img::kUnixPeerOutside;
      }
    }
    bool rights = false;
    constexpr u32 kRcvShutdown = 1;
    CKPT_TRY(peek_queue(pid, fd, sock.get(), s.sock_type, diag->shutdown & kRcvShutdown, messages, rights));
    if (rights) s.flags |= img::kUnixRightsInFlight;
    if (s.sock_type == SOCK_STREAM && !rights) {
      size_t bytes = messages.empty() ? 0 : messages[0].size();
      if (bytes != diag->rqueue)
        return make_error("pid %d fd %d: peeked %zu of the %u bytes queued on the stream socket", pid, fd, bytes,
                          diag->rqueue);
    }
  }
  if (!diag->name.empty() && diag->name[0] != '\0') {
    // The socket file's permissions, which bind() takes from the umask.
    std::string path = diag->name;
    if (path[0] != '/') path = "/proc/" + std::to_string(pid) + "/cwd/" + path;
    struct stat st {};
    if (stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) s.file_mode = st.st_mode & 07777;
  }
  fi.state = img::unix_socket_state_bytes(s, diag->name, messages);
  return img::Status::ok();
}

}  // namespace ckpt::writer
