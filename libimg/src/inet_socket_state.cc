// Encoding, decoding and describing a TCP or UDP socket's state
// (InetSocketState, docs/FORMAT.md §9.7), so that writer, reader and
// `info` agree on the bytes.
#include <ckpt/img/fd_states.h>

#include "state_bytes.h"

#include <ckpt/img/fd_kinds.h>

#include <arpa/inet.h>
#include <cstring>
#include <utility>

namespace ckpt::img {

namespace {

using state_bytes::align8;
using state_bytes::append;

constexpr u32 kAfInet6 = 10;
constexpr u32 kTcpListen = 10;

}  // namespace

bool is_inet_socket_state(const Table<FdRecord> &fds, const FdRecord &r) {
  if (!r.state.length) return false;
  auto bytes = fds.blob(r.state);
  if (!bytes || bytes->size() < sizeof(FdStateHeader)) return false;
  FdStateHeader h{};
  std::memcpy(&h, bytes->data(), sizeof h);
  // AF_UNIX layouts are versions 1..0xff (records.h, InetSocketState).
  return h.version > 0xff;
}

std::vector<u8> inet_socket_state_bytes(InetSocketState fixed, std::span<const u8> recv_queue,
                                        std::span<const u8> send_queue, const std::vector<InetDatagram> &datagrams) {
  fixed.header.version = InetSocketState::kVersion;
  fixed.queues_offset = sizeof fixed;
  fixed.recv_queue_length = u32(recv_queue.size());
  fixed.send_queue_length = u32(send_queue.size());
  fixed.datagram_count = u32(datagrams.size());
  std::vector<u8> out(sizeof fixed);
  append(out, recv_queue.data(), recv_queue.size());
  append(out, send_queue.data(), send_queue.size());
  for (const InetDatagram &d : datagrams) {
    InetDatagramHeader h = d.header;
    h.length = u32(d.bytes.size());
    append(out, &h, sizeof h);
    append(out, d.bytes.data(), d.bytes.size());
  }
  return state_bytes::seal(fixed, std::move(out));
}

Expected<InetSocket> inet_socket_state(const Table<FdRecord> &fds, const FdRecord &r) {
  auto bytes = fds.blob(r.state);
  if (!bytes) return bytes.error().context("fd " + std::to_string(r.fd) + " state");
  FdStateHeader h{};
  if (bytes->size() < sizeof h) return make_error("fd %d: no socket state in the image", r.fd);
  std::memcpy(&h, bytes->data(), sizeof h);
  if (h.size != bytes->size() || h.size < sizeof h)
    return make_error("fd %d: socket state says %u bytes but has %zu", r.fd, h.size, bytes->size());
  if (h.version != InetSocketState::kVersion)
    return make_error("fd %d: TCP/UDP socket state version %#x is not %#x (written by a newer imgtool?)", r.fd,
                      h.version, InetSocketState::kVersion);
  InetSocket out;
  std::memcpy(&out.fixed, bytes->data(), bytes->size() < sizeof out.fixed ? bytes->size() : sizeof out.fixed);
  u32 tail = out.fixed.queues_offset;
  if (tail < sizeof(FdStateHeader) + sizeof(u32) || tail > bytes->size())
    return make_error("fd %d: socket state's queues at %u lie outside its %zu bytes", r.fd, tail, bytes->size());
  // Fields at or past the queues are not this writer's (an older, shorter layout).
  if (tail < sizeof out.fixed)
    std::memset(reinterpret_cast<u8 *>(&out.fixed) + tail, 0, sizeof out.fixed - tail);
  std::span<const u8> rest = bytes->subspan(tail);
  size_t at = 0;
  auto take = [&](size_t n, std::span<const u8> &into, const char *what) -> Status {
    if (n > rest.size() - at) return make_error("fd %d: socket state: %s runs past its end", r.fd, what);
    into = rest.subspan(at, n);
    at = std::min(rest.size(), align8(at + n));
    return {};
  };
  CKPT_TRY(take(out.fixed.recv_queue_length, out.recv_queue, "the receive queue"));
  CKPT_TRY(take(out.fixed.send_queue_length, out.send_queue, "the send queue"));
  for (u32 i = 0; i < out.fixed.datagram_count; i++) {
    InetDatagram d;
    std::span<const u8> head;
    CKPT_TRY(take(sizeof d.header, head, "a datagram header"));
    std::memcpy(&d.header, head.data(), sizeof d.header);
    CKPT_TRY(take(d.header.length, d.bytes, "a datagram"));
    out.datagrams.push_back(d);
  }
  return out;
}

std::string inet_endpoint_text(u32 family, const u8 (&addr)[16], u16 port) {
  char text[INET6_ADDRSTRLEN] = "?";
  inet_ntop(family == kAfInet6 ? AF_INET6 : AF_INET, addr, text, sizeof text);
  return (family == kAfInet6 ? "[" + std::string(text) + "]" : std::string(text)) + ":" + std::to_string(port);
}

std::string tcp_state_name(u32 state) {
  static const char *const kNames[] = {"?",         "ESTABLISHED", "SYN_SENT",  "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
                                       "TIME_WAIT", "CLOSE",       "CLOSE_WAIT", "LAST_ACK", "LISTEN",    "CLOSING"};
  return state < sizeof kNames / sizeof *kNames ? kNames[state] : "state " + std::to_string(state);
}

std::string inet_socket_refusal(const InetSocketState &s) {
  std::string kind = std::string(s.protocol == 17 ? "UDP" : "TCP") + (s.family == kAfInet6 ? "v6" : "") + " socket";
  if (s.flags & kInetUnrestorableState)
    return kind + " in state " + tcp_state_name(s.state) + " (only LISTEN, ESTABLISHED and CLOSE are restored)";
  if (s.flags & kInetHalfClosed) return kind + " half-closed by shutdown() (not restored)";
  if (s.flags & kInetPendingConnections) return "listening " + kind + " with connections not yet accepted";
  return "";
}

std::string inet_socket_text(const InetSocket &u) {
  const InetSocketState &s = u.fixed;
  bool udp = s.protocol == 17;
  std::string out = std::string(udp ? "udp" : "tcp") + (s.family == kAfInet6 ? "6" : "");
  if (!udp) out += " " + tcp_state_name(s.state);
  if (s.local_port) out += " " + inet_endpoint_text(s.family, s.local_addr, s.local_port);
  else out += " unbound";
  if (s.peer_port) out += " -> " + inet_endpoint_text(s.family, s.peer_addr, s.peer_port);
  if (!udp && s.state == kTcpListen) out += ", backlog " + std::to_string(s.backlog);
  if (s.flags & kInetRepaired) {
    out += ", seq snd " + std::to_string(s.send_seq) + " rcv " + std::to_string(s.recv_seq);
    out += ", " + std::to_string(s.recv_queue_length) + " bytes to read, " + std::to_string(s.send_queue_length) +
           " bytes unacknowledged";
    if (s.unsent_bytes) out += " (" + std::to_string(s.unsent_bytes) + " unsent)";
  }
  if (udp && s.datagram_count)
    out += ", " + std::to_string(s.datagram_count) + (s.datagram_count == 1 ? " datagram queued" : " datagrams queued");
  static const std::pair<u32, const char *> kOptions[] = {
      {kInetReuseAddr, "SO_REUSEADDR"}, {kInetReusePort, "SO_REUSEPORT"}, {kInetNoDelay, "TCP_NODELAY"},
      {kInetKeepAlive, "SO_KEEPALIVE"}, {kInetV6Only, "IPV6_V6ONLY"},    {kInetBroadcast, "SO_BROADCAST"}};
  for (auto [bit, name] : kOptions)
    if (s.flags & bit) out += std::string(", ") + name;
  if (std::string why = inet_socket_refusal(s); !why.empty()) out += " (refused: " + why + ")";
  return out;
}

}  // namespace ckpt::img
