// TCP and UDP sockets from their InetSocketState. A listener is bound to
// its address again and listens with its backlog; a UDP socket is bound,
// connected, and gets its queued datagrams back, sent from their senders'
// addresses through a raw socket. An established TCP connection is made
// again in repair mode (TCP_REPAIR: bind and connect without a packet,
// sequence numbers, both queues, the options negotiated, window and
// timestamp clock), and leaves repair mode once every fd of the process is
// in place (finish_inet_socket), so that the peer sees nothing but the
// connection carrying on; then the dump's network lock of the connection
// is removed (net_lock.h).
#include "fd_kind.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <ckpt/img/fd_states.h>
#include <ckpt/img/net_lock.h>

namespace ckpt::reader {

using namespace img;

namespace {

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr *get() const { return reinterpret_cast<const sockaddr *>(&storage); }
};

Address address(u32 family, const u8 (&addr)[16], u16 port) {
  Address a;
  if (family == AF_INET6) {
    auto &in6 = reinterpret_cast<sockaddr_in6 &>(a.storage);
    in6.sin6_family = AF_INET6;
    std::memcpy(&in6.sin6_addr, addr, 16);
    in6.sin6_port = htons(port);
    a.length = sizeof in6;
  } else {
    auto &in = reinterpret_cast<sockaddr_in &>(a.storage);
    in.sin_family = AF_INET;
    std::memcpy(&in.sin_addr, addr, 4);
    in.sin_port = htons(port);
    a.length = sizeof in;
  }
  return a;
}

std::string local_text(const InetSocketState &s) { return inet_endpoint_text(s.family, s.local_addr, s.local_port); }
std::string peer_text(const InetSocketState &s) { return inet_endpoint_text(s.family, s.peer_addr, s.peer_port); }

Status set_int(int sock, int level, int name, int value, const FdRecord &r, const char *what) {
  if (setsockopt(sock, level, name, &value, sizeof value) < 0)
    return make_error("fd %d: %s: %s", r.fd, what, strerror(errno));
  return {};
}

void set_buffer(int sock, int force, int plain, u32 reported) {
  // getsockopt reports twice what was set (the kernel's bookkeeping
  // allowance); *BUFFORCE (CAP_NET_ADMIN) passes net.core.[rw]mem_max.
  int v = int(reported / 2);
  if (setsockopt(sock, SOL_SOCKET, force, &v, sizeof v) < 0) setsockopt(sock, SOL_SOCKET, plain, &v, sizeof v);
}

// The options a socket takes before bind (SO_REUSEADDR is the caller's:
// it is switched on for the bind of a listener and of a repaired socket).
Status options_before_bind(int sock, const FdRecord &r, const InetSocketState &s) {
  if (s.family == AF_INET6) CKPT_TRY(set_int(sock, IPPROTO_IPV6, IPV6_V6ONLY, !!(s.flags & kInetV6Only), r, "IPV6_V6ONLY"));
  if (s.flags & kInetReusePort) CKPT_TRY(set_int(sock, SOL_SOCKET, SO_REUSEPORT, 1, r, "SO_REUSEPORT"));
  if (s.flags & kInetBroadcast) CKPT_TRY(set_int(sock, SOL_SOCKET, SO_BROADCAST, 1, r, "SO_BROADCAST"));
  return {};
}

Status options_after(int sock, const FdRecord &r, const InetSocketState &s) {
  if (s.rcvbuf) set_buffer(sock, SO_RCVBUFFORCE, SO_RCVBUF, s.rcvbuf);
  if (s.sndbuf) set_buffer(sock, SO_SNDBUFFORCE, SO_SNDBUF, s.sndbuf);
  CKPT_TRY(set_int(sock, SOL_SOCKET, SO_REUSEADDR, !!(s.flags & kInetReuseAddr), r, "SO_REUSEADDR"));
  if (s.flags & kInetKeepAlive) CKPT_TRY(set_int(sock, SOL_SOCKET, SO_KEEPALIVE, 1, r, "SO_KEEPALIVE"));
  if (s.protocol == IPPROTO_TCP) {
    if (s.flags & kInetNoDelay) CKPT_TRY(set_int(sock, IPPROTO_TCP, TCP_NODELAY, 1, r, "TCP_NODELAY"));
    if (s.keepidle) CKPT_TRY(set_int(sock, IPPROTO_TCP, TCP_KEEPIDLE, int(s.keepidle), r, "TCP_KEEPIDLE"));
    if (s.keepintvl) CKPT_TRY(set_int(sock, IPPROTO_TCP, TCP_KEEPINTVL, int(s.keepintvl), r, "TCP_KEEPINTVL"));
    if (s.keepcnt) CKPT_TRY(set_int(sock, IPPROTO_TCP, TCP_KEEPCNT, int(s.keepcnt), r, "TCP_KEEPCNT"));
  }
  if (fcntl(sock, F_SETFL, reopen_flags(r) & (O_NONBLOCK | O_ASYNC)) < 0)
    return make_error("fd %d: socket status flags: %s", r.fd, strerror(errno));
  return {};
}

Status bind_local(int sock, const FdRecord &r, const InetSocketState &s) {
  Address a = address(s.family, s.local_addr, s.local_port);
  if (bind(sock, a.get(), a.length) < 0) {
    int e = errno;
    return make_error("fd %d: cannot bind %s to %s: %s%s", r.fd, s.protocol == IPPROTO_UDP ? "UDP" : "TCP",
                      local_text(s).c_str(), strerror(e),
                      e == EADDRINUSE ? " (is the dumped process still running?)" : "");
  }
  return {};
}

// Writes `data` into the repair queue selected (receive: as if it had
// arrived; send: as if sent and not yet acknowledged), in pieces the
// buffers take.
Status fill_queue(int sock, const FdRecord &r, int queue, std::span<const u8> data, const char *which) {
  CKPT_TRY(set_int(sock, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue, r, "TCP_REPAIR_QUEUE"));
  size_t done = 0;
  while (done < data.size()) {
    size_t piece = std::min<size_t>(data.size() - done, 64 * 1024);
    ssize_t n = send(sock, data.data() + done, piece, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return make_error("fd %d: cannot refill the TCP %s queue (%zu of %zu bytes): %s", r.fd, which, done,
                        data.size(), strerror(errno));
    done += size_t(n);
  }
  return {};
}

// An established connection, left in repair mode (finish_inet_socket ends it).
Status repair_connection(int sock, const FdRecord &r, const InetSocket &u) {
  const InetSocketState &s = u.fixed;
  CKPT_TRY(set_int(sock, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON, r, "TCP_REPAIR (needs CAP_NET_ADMIN)"));
  // Room for the queues at once (the recorded sizes are set again after).
  int room = int(std::min<u64>(2 * (u64(u.recv_queue.size()) + u.send_queue.size()) + (1u << 20), 1u << 30));
  setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &room, sizeof room);
  setsockopt(sock, SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof room);
  // Kernel quirk: repair mode sets sk_reuse to SK_FORCE_REUSE, so this
  // bind takes the address even beside a listener of the same port.
  CKPT_TRY(bind_local(sock, r, s));
  CKPT_TRY(set_int(sock, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, r, "TCP_REPAIR_QUEUE"));
  CKPT_TRY(set_int(sock, IPPROTO_TCP, TCP_QUEUE_SEQ, int(s.send_seq - u32(u.send_queue.size())), r, "TCP_QUEUE_SEQ"));
  CKPT_TRY(set_int(sock, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, r, "TCP_REPAIR_QUEUE"));
  CKPT_TRY(set_int(sock, IPPROTO_TCP, TCP_QUEUE_SEQ, int(s.recv_seq - u32(u.recv_queue.size())), r, "TCP_QUEUE_SEQ"));
  // In repair mode connect() sends no SYN: the socket is ESTABLISHED at once.
  Address peer = address(s.family, s.peer_addr, s.peer_port);
  if (connect(sock, peer.get(), peer.length) < 0) {
    int e = errno;
    return make_error("fd %d: cannot restore the TCP connection %s -> %s: %s%s", r.fd, local_text(s).c_str(),
                      peer_text(s).c_str(), strerror(e),
                      e == EADDRNOTAVAIL ? " (it is open already: is the dumped process still running?)" : "");
  }
  tcp_repair_opt opts[4];
  int count = 0;
  if (s.mss) opts[count++] = {TCPOPT_MAXSEG, s.mss};
  if (s.tcp_options & TCPI_OPT_WSCALE) opts[count++] = {TCPOPT_WINDOW, s.snd_wscale | (s.rcv_wscale << 16)};
  if (s.tcp_options & TCPI_OPT_SACK) opts[count++] = {TCPOPT_SACK_PERMITTED, 0};
  if (s.tcp_options & TCPI_OPT_TIMESTAMPS) opts[count++] = {TCPOPT_TIMESTAMP, 0};
  if (count && setsockopt(sock, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts, socklen_t(count * sizeof *opts)) < 0)
    return make_error("fd %d: TCP_REPAIR_OPTIONS: %s", r.fd, strerror(errno));
  // The connection's timestamp clock goes on from where it was (the
  // kernel keeps the difference to its own clock as tsoffset).
  if (s.tcp_options & TCPI_OPT_TIMESTAMPS)
    CKPT_TRY(set_int(sock, IPPROTO_TCP, TCP_TIMESTAMP, int(s.timestamp), r, "TCP_TIMESTAMP"));
  CKPT_TRY(fill_queue(sock, r, TCP_RECV_QUEUE, u.recv_queue, "receive"));
  // What was sent and not acknowledged is queued as sent (retransmitted
  // if the peer never got it); the unsent tail is sent normally later.
  u32 unsent = std::min<u32>(s.unsent_bytes, u32(u.send_queue.size()));
  CKPT_TRY(fill_queue(sock, r, TCP_SEND_QUEUE, u.send_queue.first(u.send_queue.size() - unsent), "send"));
  CKPT_TRY(set_int(sock, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE, r, "TCP_REPAIR_QUEUE"));
  tcp_repair_window w{s.snd_wl1, s.snd_wnd, s.max_window, s.rcv_wnd, s.rcv_wup};
  if (setsockopt(sock, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof w) < 0)
    return make_error("fd %d: TCP_REPAIR_WINDOW: %s", r.fd, strerror(errno));
  return {};
}

// One's complement sum for the UDP checksum.
u32 sum16(const void *p, size_t n, u32 sum = 0) {
  const u8 *b = static_cast<const u8 *>(p);
  for (size_t i = 0; i + 1 < n; i += 2) sum += u32(b[i]) << 8 | b[i + 1];
  if (n & 1) sum += u32(b[n - 1]) << 8;
  return sum;
}

// Queues datagram d on the UDP socket bound to `to` again as it came: from
// its sender's address and port. A raw socket (CAP_NET_RAW) sends it, so
// that no socket has to be bound to the sender's port (which may be the
// peer's, restored or still alive).
Status requeue_datagram(const FdRecord &r, const InetSocketState &s, const InetDatagram &d) {
  Address from = address(s.family, d.header.addr, 0);
  Address to = address(s.family, s.local_addr, s.local_port);
  Closer raw{socket(int(s.family), SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP)};
  if (raw.fd < 0) return make_error("fd %d: raw socket to requeue its datagrams: %s", r.fd, strerror(errno));
  // The sender's address as the packet's source (IP_FREEBIND: also one
  // that is not this host's).
  int on = 1;
  setsockopt(raw.fd, s.family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
             s.family == AF_INET6 ? IPV6_FREEBIND : IP_FREEBIND, &on, sizeof on);
  if (bind(raw.fd, from.get(), from.length) < 0)
    return make_error("fd %d: cannot send its queued datagram from %s: %s", r.fd,
                      inet_endpoint_text(s.family, d.header.addr, d.header.port).c_str(), strerror(errno));
  std::vector<u8> packet(sizeof(udphdr) + d.bytes.size());
  udphdr h{};
  h.source = htons(d.header.port);
  h.dest = htons(s.local_port);
  h.len = htons(u16(packet.size()));
  // IPv4 may leave the checksum out (0); IPv6 must have one (RFC 8200),
  // over the pseudo-header: addresses, length, next header.
  if (s.family == AF_INET6) {
    u32 sum = sum16(d.header.addr, 16);
    sum = sum16(s.local_addr, 16, sum);
    sum += u32(packet.size()) + IPPROTO_UDP;
    std::memcpy(packet.data(), &h, sizeof h);
    std::memcpy(packet.data() + sizeof h, d.bytes.data(), d.bytes.size());
    sum = sum16(packet.data(), packet.size(), sum);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    u16 check = u16(~sum);
    h.check = htons(check ? check : 0xffff);
  }
  std::memcpy(packet.data(), &h, sizeof h);
  std::memcpy(packet.data() + sizeof h, d.bytes.data(), d.bytes.size());
  if (sendto(raw.fd, packet.data(), packet.size(), 0, to.get(), to.length) != ssize_t(packet.size()))
    return make_error("fd %d: cannot requeue its %zu-byte datagram: %s", r.fd, d.bytes.size(), strerror(errno));
  return {};
}

}  // namespace

Expected<int> open_inet_socket(FdOpenContext &c, const FdRecord &r) {
  auto u = inet_socket_state(c.view.fds, r);
  if (!u) return u.error();
  const InetSocketState &s = u->fixed;
  if (std::string why = inet_socket_refusal(s); !why.empty()) return make_error("fd %d: %s", r.fd, why.c_str());
  Closer sock{socket(int(s.family), int(s.sock_type) | SOCK_CLOEXEC, int(s.protocol))};
  if (sock.fd < 0) return make_error("fd %d: socket: %s", r.fd, strerror(errno));
  CKPT_TRY(options_before_bind(sock.fd, r, s));
  if (s.flags & kInetRepaired) {
    CKPT_TRY(repair_connection(sock.fd, r, *u));
    return sock.release();  // options and status flags once repair mode ends
  }
  constexpr u32 kTcpListen = 10;
  if (s.local_port) {
    // A listener takes its port beside connections accepted from it that
    // are restored in repair mode (their SK_FORCE_REUSE lets a reusing
    // bind through); its own SO_REUSEADDR is set as it was after.
    if (s.state == kTcpListen) CKPT_TRY(set_int(sock.fd, SOL_SOCKET, SO_REUSEADDR, 1, r, "SO_REUSEADDR"));
    CKPT_TRY(bind_local(sock.fd, r, s));
  }
  if (s.state == kTcpListen && listen(sock.fd, int(s.backlog)) < 0)
    return make_error("fd %d: listen on %s: %s", r.fd, local_text(s).c_str(), strerror(errno));
  if (s.protocol == IPPROTO_UDP) {
    for (const InetDatagram &d : u->datagrams) CKPT_TRY(requeue_datagram(r, s, d));
    if (s.peer_port) {
      Address peer = address(s.family, s.peer_addr, s.peer_port);
      if (connect(sock.fd, peer.get(), peer.length) < 0)
        return make_error("fd %d: connect UDP to %s: %s", r.fd, peer_text(s).c_str(), strerror(errno));
    }
  }
  CKPT_TRY(options_after(sock.fd, r, s));
  return sock.release();
}

Status finish_inet_socket(const CkptView &v, const FdRecord &r) {
  auto u = inet_socket_state(v.fds, r);
  if (!u) return u.error();
  const InetSocketState &s = u->fixed;
  if (!(s.flags & kInetRepaired)) return {};
  // Another fd of the same socket (a dup, or an fd inherited in a tree)
  // finished it already.
  int repair = 0;
  socklen_t len = sizeof repair;
  if (getsockopt(r.fd, IPPROTO_TCP, TCP_REPAIR, &repair, &len) < 0 || !repair) return {};
  // With a window probe (TCP_REPAIR_OFF), as CRIU does: the peer's answer
  // gives the socket the peer's window as it is now, which may have
  // changed since the dump. The peer sees only an ordinary probe.
  CKPT_TRY(set_int(r.fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF, r, "TCP_REPAIR off"));
  // The connection is whole again: the --kill dump's lock goes, and the
  // peer's next retransmission gets through (none to remove after a dump
  // that kept its tree running, or from an image older than the lock).
  TcpConnectionEnds ends;
  ends.family = s.family;
  std::memcpy(ends.local_addr, s.local_addr, 16);
  std::memcpy(ends.peer_addr, s.peer_addr, 16);
  ends.local_port = s.local_port;
  ends.peer_port = s.peer_port;
  if (auto unlocked = net_lock_remove(ends); !unlocked) return unlocked.error().context("fd " + std::to_string(r.fd));
  // The unsent tail goes first, while the send buffer still has the room
  // made for the queues; then the socket's own buffer sizes and options.
  u32 unsent = std::min<u32>(s.unsent_bytes, u32(u->send_queue.size()));
  std::span<const u8> tail = u->send_queue.last(unsent);
  size_t done = 0;
  while (done < tail.size()) {
    ssize_t n = send(r.fd, tail.data() + done, tail.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return make_error("fd %d: cannot send the %zu bytes it had not sent yet: %s", r.fd, tail.size(),
                        strerror(errno));
    done += size_t(n);
  }
  // Kernel quirk: leaving repair mode sets sk_reuse to SK_NO_REUSE;
  // options_after puts the socket's own SO_REUSEADDR back.
  return options_after(r.fd, r, s);
}

}  // namespace ckpt::reader
