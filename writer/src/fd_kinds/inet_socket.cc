// TCP and UDP sockets over IPv4 and IPv6, captured into an
// InetSocketState from our copy of the socket (pidfd_getfd: the same
// socket, not a new one): addresses, options, a listener's backlog
// (inet_diag), a UDP socket's queued datagrams (MSG_PEEK), and for an
// established TCP connection what TCP_REPAIR shows: sequence numbers,
// both queues, the options negotiated, window and timestamp clock.
#include "fd_kind.h"
#include "sock_diag.h"
#include "inet_socket.h"
#include "tcp_repair.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <vector>

namespace ckpt::writer {

using img::make_error;
using img::u16;
using img::u32;
using img::u8;

namespace {

// An address as the state stores it: bytes in network order, port in host order.
void store_address(const sockaddr_storage &a, u8 (&addr)[16], u16 &port) {
  if (a.ss_family == AF_INET) {
    auto &in = reinterpret_cast<const sockaddr_in &>(a);
    std::memcpy(addr, &in.sin_addr, 4);
    port = ntohs(in.sin_port);
  } else if (a.ss_family == AF_INET6) {
    auto &in6 = reinterpret_cast<const sockaddr_in6 &>(a);
    std::memcpy(addr, &in6.sin6_addr, 16);
    port = ntohs(in6.sin6_port);
  }
}

struct InetDiag {
  u32 rqueue = 0;    ///< listener: connections not accepted
  u32 wqueue = 0;    ///< listener: the backlog
  u32 shutdown = 0;  ///< sk_shutdown
};

// sock_diag (inet_diag) of the TCP socket with inode `ino`, found in a
// dump of the family's TCP sockets (an exact lookup would need the
// 4-tuple, which a listener bound to a wildcard address does not have).
img::Expected<InetDiag> tcp_diag(u32 family, img::u64 ino) {
  auto nl = sock_diag_socket();
  if (!nl) return nl.error();
  inet_diag_req_v2 req{};
  req.sdiag_family = u8(family);
  req.sdiag_protocol = IPPROTO_TCP;
  req.idiag_states = ~0u;
  if (int e = send_sock_diag(nl->get(), req, NLM_F_DUMP)) return make_error("inet_diag request: %s", strerror(e));
  std::vector<char> buf(65536);
  std::optional<InetDiag> found;
  for (;;) {
    ssize_t n = recv(nl->get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("inet_diag reply: %s", strerror(errno));
    size_t left = size_t(n);
    for (auto *h = reinterpret_cast<nlmsghdr *>(buf.data()); img::nlmsg_ok(h, left); h = img::nlmsg_next(h, left)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        if (!found) return make_error("inet_diag does not list socket:[%llu]", (unsigned long long)ino);
        return *found;
      }
      if (h->nlmsg_type == NLMSG_ERROR)
        return make_error("inet_diag: %s", strerror(-reinterpret_cast<nlmsgerr *>(NLMSG_DATA(h))->error));
      auto *m = reinterpret_cast<inet_diag_msg *>(NLMSG_DATA(h));
      if (m->idiag_inode != ino) continue;
      InetDiag d;
      d.rqueue = m->idiag_rqueue;
      d.wqueue = m->idiag_wqueue;
      int len = int(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
      for (auto *a = reinterpret_cast<rtattr *>(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == INET_DIAG_SHUTDOWN && RTA_PAYLOAD(a) >= 1)
          d.shutdown = *static_cast<const u8 *>(RTA_DATA(a));
      found = d;
    }
  }
}

// Peeks exactly `length` bytes of the queue selected (repair mode).
img::Status peek_exactly(pid_t pid, int fd, int sock, u32 length, std::vector<u8> &out, const char *which) {
  out.assign(length, 0);
  if (!length) return {};
  // One peek copies from every queued segment in turn (tcp_recvmsg's
  // MSG_PEEK walks the receive queue; in repair mode with TCP_SEND_QUEUE
  // it walks the send queue, tcp_peek_sndq).
  ssize_t n;
  do n = recv(sock, out.data(), length, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n != ssize_t(length))
    return make_error("pid %d fd %d: peeked %zd of the %u bytes in the TCP %s queue%s%s", pid, fd, n, length, which,
                      n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
  return {};
}

// What repair mode shows of an established connection.
img::Status read_repaired(pid_t pid, int fd, int sock, img::InetSocketState &s, std::vector<u8> &recv_queue,
                          std::vector<u8> &send_queue) {
  int inq = 0, outq = 0, unsent = 0;
  if (ioctl(sock, SIOCINQ, &inq) < 0 || ioctl(sock, SIOCOUTQ, &outq) < 0 || ioctl(sock, SIOCOUTQNSD, &unsent) < 0)
    return make_error("pid %d fd %d: TCP queue lengths: %s", pid, fd, strerror(errno));
  s.unsent_bytes = u32(unsent);
  auto queue_seq = [&](int queue, u32 &seq) -> img::Status {
    socklen_t len = sizeof seq;
    if (setsockopt(sock, IPPROTO_TCP, TCP_REPAIR_QUEUE, &queue, sizeof queue) < 0 ||
        getsockopt(sock, IPPROTO_TCP, TCP_QUEUE_SEQ, &seq, &len) < 0)
      return make_error("pid %d fd %d: TCP_QUEUE_SEQ: %s", pid, fd, strerror(errno));
    return {};
  };
  CKPT_TRY(queue_seq(TCP_RECV_QUEUE, s.recv_seq));
  CKPT_TRY(peek_exactly(pid, fd, sock, u32(inq), recv_queue, "receive"));
  CKPT_TRY(queue_seq(TCP_SEND_QUEUE, s.send_seq));
  CKPT_TRY(peek_exactly(pid, fd, sock, u32(outq), send_queue, "send"));
  int none = TCP_NO_QUEUE;
  setsockopt(sock, IPPROTO_TCP, TCP_REPAIR_QUEUE, &none, sizeof none);

  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (getsockopt(sock, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
    return make_error("pid %d fd %d: TCP_INFO: %s", pid, fd, strerror(errno));
  s.tcp_options = ti.tcpi_options & (TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE);
  s.snd_wscale = ti.tcpi_snd_wscale;
  s.rcv_wscale = ti.tcpi_rcv_wscale;
  s.mss = u32(socket_int_option(sock, IPPROTO_TCP, TCP_MAXSEG, 0));
  len = sizeof s.timestamp;
  if (getsockopt(sock, IPPROTO_TCP, TCP_TIMESTAMP, &s.timestamp, &len) < 0)
    return make_error("pid %d fd %d: TCP_TIMESTAMP: %s", pid, fd, strerror(errno));
  tcp_repair_window w{};
  len = sizeof w;
  if (getsockopt(sock, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len) < 0)
    return make_error("pid %d fd %d: TCP_REPAIR_WINDOW: %s", pid, fd, strerror(errno));
  s.snd_wl1 = w.snd_wl1;
  s.snd_wnd = w.snd_wnd;
  s.max_window = w.max_window;
  s.rcv_wnd = w.rcv_wnd;
  s.rcv_wup = w.rcv_wup;
  s.flags |= img::kInetRepaired;
  return {};
}

// An established connection through TCP_REPAIR (the socket stays in
// repair mode until the dump ends: tcp_repair.h). A --kill dump locks it
// first: from then on nothing the peer sends reaches the queues read here.
img::Status capture_repaired(pid_t pid, int fd, int sock, img::InetSocketState &s, std::vector<u8> &recv_queue,
                             std::vector<u8> &send_queue) {
  img::TcpConnectionEnds ends;
  ends.family = s.family;
  std::memcpy(ends.local_addr, s.local_addr, 16);
  std::memcpy(ends.peer_addr, s.peer_addr, 16);
  ends.local_port = s.local_port;
  ends.peer_port = s.peer_port;
  if (auto locked = lock_connection(pid, ends); !locked) return locked.error().context(fd_where(pid, fd));
  int on = TCP_REPAIR_ON;
  if (setsockopt(sock, IPPROTO_TCP, TCP_REPAIR, &on, sizeof on) < 0)
    return make_error("pid %d fd %d: TCP_REPAIR: %s (needs CAP_NET_ADMIN)", pid, fd, strerror(errno));
  img::Status read = read_repaired(pid, fd, sock, s, recv_queue, send_queue);
  hold_in_repair(dup(sock), s.flags & img::kInetReuseAddr);
  return read;
}

// A UDP socket's queued datagrams with their senders, walked with
// MSG_PEEK from the peek offset (SO_PEEK_OFF, put back after).
img::Status peek_datagrams(pid_t pid, int fd, int sock, std::vector<std::vector<u8>> &bytes,
                           std::vector<img::InetDatagramHeader> &headers) {
  int saved_off = socket_int_option(sock, SOL_SOCKET, SO_PEEK_OFF, -1);
  int zero = 0;
  if (setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) < 0)
    return make_error("pid %d fd %d: SO_PEEK_OFF: %s", pid, fd, strerror(errno));
  std::vector<u8> buf(65536);
  img::Status result;
  for (;;) {
    sockaddr_storage from{};
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    ssize_t n = recvmsg(sock, &msg, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) {
      result = make_error("pid %d fd %d: peeking at the socket's queue: %s", pid, fd, strerror(errno));
      break;
    }
    if (n == 0) {
      // The peek offset cannot step over an empty datagram.
      result = make_error("pid %d fd %d: a zero-length datagram is queued (not supported)", pid, fd);
      break;
    }
    img::InetDatagramHeader h{};
    store_address(from, h.addr, h.port);
    headers.push_back(h);
    bytes.emplace_back(buf.begin(), buf.begin() + n);
  }
  setsockopt(sock, SOL_SOCKET, SO_PEEK_OFF, &saved_off, sizeof saved_off);
  return result;
}

}  // namespace

img::Status capture_inet_socket(pid_t pid, int sock, FdInfo &fi) {
  int fd = fi.record.fd;
  img::InetSocketState s{};
  s.family = u32(socket_int_option(sock, SOL_SOCKET, SO_DOMAIN, 0));
  s.sock_type = u32(socket_int_option(sock, SOL_SOCKET, SO_TYPE, 0));
  s.protocol = u32(socket_int_option(sock, SOL_SOCKET, SO_PROTOCOL, 0));
  bool tcp = s.sock_type == SOCK_STREAM && s.protocol == IPPROTO_TCP;
  bool udp = s.sock_type == SOCK_DGRAM && s.protocol == IPPROTO_UDP;
  // Raw, ICMP, SCTP, MPTCP...: no state; restore refuses them by kind.
  if (!tcp && !udp) return img::Status::ok();

  sockaddr_storage a{};
  socklen_t alen = sizeof a;
  if (getsockname(sock, reinterpret_cast<sockaddr *>(&a), &alen) == 0) store_address(a, s.local_addr, s.local_port);
  alen = sizeof a;
  bool connected = getpeername(sock, reinterpret_cast<sockaddr *>(&a), &alen) == 0;
  if (connected) store_address(a, s.peer_addr, s.peer_port);
  s.rcvbuf = u32(socket_int_option(sock, SOL_SOCKET, SO_RCVBUF, 0));
  s.sndbuf = u32(socket_int_option(sock, SOL_SOCKET, SO_SNDBUF, 0));
  if (socket_int_option(sock, SOL_SOCKET, SO_REUSEADDR, 0)) s.flags |= img::kInetReuseAddr;
  if (socket_int_option(sock, SOL_SOCKET, SO_REUSEPORT, 0)) s.flags |= img::kInetReusePort;
  if (socket_int_option(sock, SOL_SOCKET, SO_KEEPALIVE, 0)) s.flags |= img::kInetKeepAlive;
  if (socket_int_option(sock, SOL_SOCKET, SO_BROADCAST, 0)) s.flags |= img::kInetBroadcast;
  if (s.family == AF_INET6 && socket_int_option(sock, IPPROTO_IPV6, IPV6_V6ONLY, 0)) s.flags |= img::kInetV6Only;

  std::vector<u8> recv_queue, send_queue;
  std::vector<std::vector<u8>> datagram_bytes;
  std::vector<img::InetDatagramHeader> datagram_headers;
  if (udp) {
    s.state = connected ? 1 : 7;  // as the kernel keeps it: TCP_ESTABLISHED, TCP_CLOSE
    CKPT_TRY(peek_datagrams(pid, fd, sock, datagram_bytes, datagram_headers));
  } else {
    if (socket_int_option(sock, IPPROTO_TCP, TCP_NODELAY, 0)) s.flags |= img::kInetNoDelay;
    s.keepidle = u32(socket_int_option(sock, IPPROTO_TCP, TCP_KEEPIDLE, 0));
    s.keepintvl = u32(socket_int_option(sock, IPPROTO_TCP, TCP_KEEPINTVL, 0));
    s.keepcnt = u32(socket_int_option(sock, IPPROTO_TCP, TCP_KEEPCNT, 0));
    tcp_info ti{};
    socklen_t len = sizeof ti;
    if (getsockopt(sock, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
      return make_error("pid %d fd %d: TCP_INFO: %s", pid, fd, strerror(errno));
    s.state = ti.tcpi_state;
    if (s.state == TCP_LISTEN || s.state == TCP_ESTABLISHED) {
      auto diag = tcp_diag(s.family, fi.record.ino);
      if (!diag) return diag.error().context(fd_where(pid, fd));
      if (s.state == TCP_LISTEN) {
        s.backlog = diag->wqueue;
        // Connections in the accept queue belong to no process yet: their
        // clients would be left with nothing at the other end.
        if (diag->rqueue) s.flags |= img::kInetPendingConnections;
      } else if (diag->shutdown) {
        s.flags |= img::kInetHalfClosed;
      } else {
        CKPT_TRY(capture_repaired(pid, fd, sock, s, recv_queue, send_queue));
      }
    } else if (s.state != TCP_CLOSE) {
      s.flags |= img::kInetUnrestorableState;
    }
  }
  std::vector<img::InetDatagram> datagrams;
  for (size_t i = 0; i < datagram_bytes.size(); i++) datagrams.push_back({datagram_headers[i], datagram_bytes[i]});
  fi.state = img::inet_socket_state_bytes(s, recv_queue, send_queue, datagrams);
  return img::Status::ok();
}

int socket_int_option(int fd, int level, int name, int fallback) {
  int v = 0;
  socklen_t len = sizeof v;
  return getsockopt(fd, level, name, &v, &len) == 0 ? v : fallback;
}

}  // namespace ckpt::writer
