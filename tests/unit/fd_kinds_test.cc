// The fd kind registry (libimg/fd_kinds.h, reader/src/fd_kinds/): every
// FdType has its entries, under the names `imgtool info --json` has always
// used. That a missing entry fails the build is fd_kind_registry_compile.cc.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

#include <ckpt/img/fd_kinds.h>
#include <ckpt/img/fd_states.h>

#include "fd_kinds/fd_kind.h"

using namespace ckpt;
using namespace ckpt::img;

TEST(FdKinds, EveryTypeHasItsStableName) {
  // The JSON names are an interface (gdb-scripts, users' scripts): they
  // were positional before the registry and must not move.
  const char *expected[] = {"regular", "directory", "pipe_read", "pipe_write", "fifo", "char_device",
                            "block_device", "socket", "eventfd", "signalfd", "timerfd", "epoll",
                            "inotify", "memfd", "other"};
  ASSERT_EQ(kFdTypeCount, std::size(expected));
  std::set<std::string> seen;
  for (u32 t = 0; t < kFdTypeCount; t++) {
    const FdKindInfo *k = fd_kind_info(t);
    ASSERT_NE(k, nullptr) << "type " << t;
    EXPECT_EQ(static_cast<u32>(k->type), t);
    EXPECT_STREQ(k->name, expected[t]);
    EXPECT_STREQ(fd_kind_name(t), expected[t]);
    EXPECT_TRUE(seen.insert(k->name).second) << "two kinds named " << k->name;
  }
}

TEST(FdKinds, UnknownNumbersAreNamedUnknown) {
  EXPECT_EQ(fd_kind_info(kFdTypeCount), nullptr);
  EXPECT_STREQ(fd_kind_name(kFdTypeCount), "unknown");
  EXPECT_STREQ(fd_kind_name(0xffffffffu), "unknown");
  EXPECT_EQ(reader::reader_fd_kind(kFdTypeCount), nullptr);
}

TEST(FdKinds, EveryTypeHasAReaderEntry) {
  for (u32 t = 0; t < kFdTypeCount; t++) {
    const reader::ReaderFdKind *k = reader::reader_fd_kind(t);
    ASSERT_NE(k, nullptr) << "type " << t;
    EXPECT_EQ(static_cast<u32>(k->type), t);
    EXPECT_TRUE(k->complete());
  }
}

TEST(FdKinds, OnlyPipeEndsAreSharedByPipeId) {
  for (u32 t = 0; t < kFdTypeCount; t++) {
    auto type = static_cast<FdType>(t);
    EXPECT_EQ(is_pipe_end(type), type == FdType::PipeRead || type == FdType::PipeWrite) << fd_kind_name(t);
  }
}

TEST(FdKinds, ARefusedKindIsOneLineNotASilentSkip) {
  // unsupported_state refuses these first; should a restore still get to
  // one, opening it fails naming the fd and the kind.
  FdRecord r{};
  r.fd = 7;
  r.type = static_cast<u32>(FdType::BlockDevice);
  CkptView v;
  reader::PipeTable pipes;
  int terminal[3] = {-1, -1, -1};
  reader::FdOpenContext c{v, pipes, terminal};
  auto fd = reader::reader_fd_kind(r.type)->open(c, r);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().message(), "fd 7: block_device: not supported");
}

// A kind's state (FdRecord::state): length-prefixed and versioned; what a
// reader cannot trust is an error naming the fd, never a guess.
class FdState : public ::testing::Test {
 protected:
  Table<FdRecord> encode(const std::vector<u8> &state, FdType type = FdType::EventFd) {
    TableBuilder<FdRecord> b;
    FdRecord r{};
    r.fd = 9;
    r.type = static_cast<u32>(type);
    r.state = b.add_blob(state);
    b.add(r);
    bytes_ = b.encode();
    auto t = decode_table<FdRecord>(bytes_);
    EXPECT_TRUE(t) << t.error().message();
    return t.take();
  }
  // A socket's state (Fixed first) cut 8 bytes short, its header's size
  // saying so, is refused by `decode` with `message`.
  // ASSERT_NO_FATAL_FAILURE.
  template <class Fixed, class Decode>
  void expect_cut_short_refused(std::vector<u8> state, Decode decode, const std::string &message) {
    state.resize(state.size() - 8);
    Fixed h{};
    std::memcpy(&h, state.data(), sizeof h);
    h.header.size = u32(state.size());
    std::memcpy(state.data(), &h, sizeof h);
    Table<FdRecord> t = encode(state, FdType::Socket);
    auto bad = decode(t, t.records[0]);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message(), message);
  }
  std::vector<u8> bytes_;
};

TEST_F(FdState, RoundTrips) {
  EventFdState s{};
  s.header = {sizeof s, EventFdState::kVersion};
  s.count = 0x123456789abULL;
  s.flags = kEventFdSemaphore;
  Table<FdRecord> t = encode(fd_state_bytes(s));
  auto back = fd_state<EventFdState>(t, t.records[0]);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->count, s.count);
  EXPECT_EQ(back->flags, s.flags);
  EXPECT_EQ(fd_kind_info(t.records[0].type)->describe(t, t.records[0]), "count 1250999896491, semaphore");
}

TEST_F(FdState, ShorterStateIsZeroFilled) {
  // An older layout of the same version that ended after `count`.
  EventFdState s{};
  s.header = {16, EventFdState::kVersion};
  s.count = 5;
  s.flags = kEventFdSemaphore;  // beyond the 16 bytes: must not be read
  std::vector<u8> b = fd_state_bytes(s);
  b.resize(16);
  Table<FdRecord> t = encode(b);
  auto back = fd_state<EventFdState>(t, t.records[0]);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->count, 5u);
  EXPECT_EQ(back->flags, 0u);
}

TEST_F(FdState, BadStatesAreRefusedByName) {
  EventFdState s{};
  s.header = {sizeof s, EventFdState::kVersion + 1};
  Table<FdRecord> t = encode(fd_state_bytes(s));
  auto newer = fd_state<EventFdState>(t, t.records[0]);
  ASSERT_FALSE(newer);
  EXPECT_EQ(newer.error().message(), "fd 9: eventfd state version 2 is not 1 (written by a newer imgtool?)");

  s.header = {40, EventFdState::kVersion};
  t = encode(fd_state_bytes(s));
  auto lying = fd_state<EventFdState>(t, t.records[0]);
  ASSERT_FALSE(lying);
  EXPECT_EQ(lying.error().message(), "fd 9: eventfd state says 40 bytes but has 24");

  t = encode({});
  auto none = fd_state<EventFdState>(t, t.records[0]);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(), "fd 9: no eventfd state in the image");
  // And an image without it is refused before any restore starts.
  EXPECT_EQ(fd_kind_info(t.records[0].type)->refusal(t.records[0], "anon_inode:[eventfd]"),
            "eventfd (its counter was not captured)");
}

// An inotify fd's state: its watches, each with its path, in wd order.
TEST_F(FdState, InotifyWatchesRoundTrip) {
  std::vector<InotifyWatchEntry> in(2);
  in[0].watch.wd = 1;
  in[0].watch.mask = 0x2;
  in[0].watch.ino = 77;
  in[0].path = "/tmp/a";
  in[1].watch.wd = 4;
  in[1].watch.mask = 0x100 | 0x80000000u;  // IN_CREATE | IN_ONESHOT
  in[1].path = "/tmp/a directory of eight";
  std::vector<u8> b = inotify_state_bytes(in);
  // 16 + (32 + 8) + (32 + 32): each path padded to 8.
  EXPECT_EQ(b.size(), 120u);
  Table<FdRecord> t = encode(b);
  t.records[0].type = static_cast<u32>(FdType::Inotify);
  auto back = inotify_watches(t, t.records[0]);
  ASSERT_TRUE(back) << back.error().message();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].watch.wd, 1);
  EXPECT_EQ((*back)[0].path, "/tmp/a");
  EXPECT_EQ((*back)[1].watch.mask, 0x80000100u);
  EXPECT_EQ((*back)[1].path, "/tmp/a directory of eight");
  EXPECT_EQ(fd_kind_info(t.records[0].type)->describe(t, t.records[0]),
            "2 watches: wd 1 mask 0x2 /tmp/a, wd 4 mask 0x80000100 /tmp/a directory of eight");

  // Out of order, or a path running past the end: refused by fd.
  std::swap(in[0], in[1]);
  t = encode(inotify_state_bytes(in));
  auto unordered = inotify_watches(t, t.records[0]);
  ASSERT_FALSE(unordered);
  EXPECT_EQ(unordered.error().message(), "fd 9: inotify watches not in ascending wd order (1 after 4)");
  b = inotify_state_bytes({in[1]});
  b[16 + 24] = 200;  // path_length beyond the state
  t = encode(b);
  auto truncated = inotify_watches(t, t.records[0]);
  ASSERT_FALSE(truncated);
  EXPECT_EQ(truncated.error().message(), "fd 9: inotify watch 1's path runs past the state");
}

// timerfd and signalfd states as `imgtool info` shows them.
TEST_F(FdState, TimerfdAndSignalfdDescribed) {
  TimerFdState s{};
  s.header = {sizeof s, TimerFdState::kVersion};
  s.clock_id = 0;
  s.settime_flags = 3;
  s.ticks = 2;
  s.value_ns = 1500;
  s.interval_ns = 1000000;
  s.expiry_ns = 123456789;
  Table<FdRecord> t = encode(fd_state_bytes(s));
  t.records[0].type = static_cast<u32>(FdType::TimerFd);
  EXPECT_EQ(fd_kind_info(t.records[0].type)->describe(t, t.records[0]),
            "clock 0, next in 1500 ns, interval 1000000 ns, ticks 2, abstime, cancel on set");
  SignalFdState g{};
  g.header = {sizeof g, SignalFdState::kVersion};
  g.sigmask = 0xa00;
  t = encode(fd_state_bytes(g));
  t.records[0].type = static_cast<u32>(FdType::SignalFd);
  EXPECT_EQ(fd_kind_info(t.records[0].type)->describe(t, t.records[0]), "sigmask 0000000000000a00");
  // Without a state (an older writer's image) each is refused, saying so.
  t = encode({});
  t.records[0].type = static_cast<u32>(FdType::TimerFd);
  EXPECT_EQ(fd_kind_info(t.records[0].type)->refusal(t.records[0], ""), "timerfd (its settings were not captured)");
}

// AF_UNIX and epoll states: a fixed part, then variable data at the offset
// the fixed part names (docs/FORMAT.md §9.7).
TEST_F(FdState, UnixSocketRoundTripsWithNameAndMessages) {
  UnixSocketState fixed{};
  fixed.sock_type = 2;
  fixed.flags = kUnixConnected;
  fixed.ino = 100;
  fixed.peer_ino = 101;
  std::vector<std::vector<u8>> messages = {{'a'}, {}, {'b', 'b', 'b', 'b', 'b', 'b', 'b', 'b', 'b'}};
  std::string name("\0abstract", 9);
  Table<FdRecord> t = encode(unix_socket_state_bytes(fixed, name, messages), FdType::Socket);
  auto back = unix_socket_state(t, t.records[0]);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->fixed.name_offset, sizeof(UnixSocketState));
  EXPECT_EQ(back->fixed.queued_bytes, 10u);
  EXPECT_EQ(back->name, name);
  ASSERT_EQ(back->messages.size(), 3u);
  EXPECT_EQ(back->messages[0].size(), 1u);
  EXPECT_EQ(back->messages[1].size(), 0u);
  EXPECT_EQ(back->messages[2].size(), 9u);
  EXPECT_EQ(fd_kind_info(t.records[0].type)->describe(t, t.records[0]),
            "unix dgram, bound to @abstract, peer socket:[101], 10 bytes queued in 3 messages");
  EXPECT_EQ(fd_kind_info(t.records[0].type)->state_refusal(t, t.records[0]), "");
}

TEST_F(FdState, UnixSocketFromAShorterFixedPartAndRefusals) {
  // A writer whose fixed part ended at 64 bytes (after name_length): the
  // fields from there on read as zero, the name starts where it says.
  UnixSocketState fixed{};
  fixed.sock_type = 1;
  fixed.flags = kUnixPeerOutside;
  std::vector<u8> b = unix_socket_state_bytes(fixed, "", {});
  UnixSocketState shorter{};
  std::memcpy(&shorter, b.data(), sizeof shorter);
  shorter.name_offset = 64;
  shorter.header.size = 64;
  shorter.message_count = 3;  // beyond the 64 bytes: must not be read
  std::vector<u8> old(sizeof shorter);
  std::memcpy(old.data(), &shorter, sizeof shorter);
  old.resize(64);
  Table<FdRecord> t = encode(old, FdType::Socket);
  auto back = unix_socket_state(t, t.records[0]);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->fixed.message_count, 0u);
  EXPECT_EQ(back->name, "");
  EXPECT_EQ(fd_kind_info(t.records[0].type)->state_refusal(t, t.records[0]),
            "AF_UNIX stream socket connected to a peer outside the dumped processes");
  // A message running past the end is refused by name.
  ASSERT_NO_FATAL_FAILURE(expect_cut_short_refused<UnixSocketState>(
      unix_socket_state_bytes(fixed, "", {{1, 2, 3}}),
      [](const Table<FdRecord> &table, const FdRecord &r) { return unix_socket_state(table, r); },
      "fd 9: AF_UNIX socket state: a message runs past its end"));
}

// A TCP or UDP socket's state: family (AF_INET 2, AF_INET6 10), type,
// protocol, TCP/UDP state and InetSocketFlags; the rest zero.
static InetSocketState inet_state(u32 family, u32 sock_type, u32 protocol, u32 state, u32 flags = 0) {
  InetSocketState s{};
  s.family = family;
  s.sock_type = sock_type;
  s.protocol = protocol;
  s.state = state;
  s.flags = flags;
  return s;
}

// TCP/UDP: their own layout beside AF_UNIX's, told apart by the version.
TEST_F(FdState, InetSocketRoundTripsWithQueuesAndDatagrams) {
  InetSocketState fixed = inet_state(2, 1, 6, 1, kInetRepaired | kInetNoDelay);
  u8 lo[16] = {127, 0, 0, 1};
  std::memcpy(fixed.local_addr, lo, 16);
  std::memcpy(fixed.peer_addr, lo, 16);
  fixed.local_port = 40000;
  fixed.peer_port = 8080;
  fixed.send_seq = 1000;
  fixed.recv_seq = 2000;
  fixed.unsent_bytes = 2;
  std::vector<u8> recv = {'a', 'b', 'c'}, send = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  Table<FdRecord> t = encode(inet_socket_state_bytes(fixed, recv, send, {}), FdType::Socket);
  EXPECT_TRUE(is_inet_socket_state(t, t.records[0]));
  auto back = inet_socket_state(t, t.records[0]);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->fixed.queues_offset, sizeof(InetSocketState));
  EXPECT_EQ(std::vector<u8>(back->recv_queue.begin(), back->recv_queue.end()), recv);
  EXPECT_EQ(std::vector<u8>(back->send_queue.begin(), back->send_queue.end()), send);
  EXPECT_EQ(fd_kind_info(t.records[0].type)->describe(t, t.records[0]),
            "tcp ESTABLISHED 127.0.0.1:40000 -> 127.0.0.1:8080, seq snd 1000 rcv 2000, 3 bytes to read, 9 bytes "
            "unacknowledged (2 unsent), TCP_NODELAY");
  EXPECT_EQ(fd_kind_info(t.records[0].type)->state_refusal(t, t.records[0]), "");

  InetSocketState udp = inet_state(10, 2, 17, 7);
  udp.local_addr[15] = 1;
  udp.local_port = 53;
  InetDatagram d;
  d.header.port = 9;
  d.header.addr[15] = 1;
  std::vector<u8> payload = {'x', 'y'};
  d.bytes = payload;
  t = encode(inet_socket_state_bytes(udp, {}, {}, {d, d}), FdType::Socket);
  auto u = inet_socket_state(t, t.records[0]);
  ASSERT_TRUE(u) << u.error().message();
  ASSERT_EQ(u->datagrams.size(), 2u);
  EXPECT_EQ(u->datagrams[1].header.port, 9u);
  EXPECT_EQ(u->datagrams[1].bytes.size(), 2u);
  EXPECT_EQ(fd_kind_info(t.records[0].type)->describe(t, t.records[0]), "udp6 [::1]:53, 2 datagrams queued");
  // A datagram running past the end is refused by name.
  ASSERT_NO_FATAL_FAILURE(expect_cut_short_refused<InetSocketState>(
      inet_socket_state_bytes(udp, {}, {}, {d}),
      [](const Table<FdRecord> &table, const FdRecord &r) { return inet_socket_state(table, r); },
      "fd 9: socket state: a datagram runs past its end"));
}

TEST_F(FdState, InetSocketStatesThatCannotComeBackAreRefused) {
  InetSocketState s = inet_state(2, 1, 6, 8, kInetUnrestorableState);
  Table<FdRecord> t = encode(inet_socket_state_bytes(s, {}, {}, {}), FdType::Socket);
  EXPECT_EQ(fd_kind_info(t.records[0].type)->state_refusal(t, t.records[0]),
            "TCP socket in state CLOSE_WAIT (only LISTEN, ESTABLISHED and CLOSE are restored)");
  s.state = 10;
  s.family = 10;
  s.flags = kInetPendingConnections;
  t = encode(inet_socket_state_bytes(s, {}, {}, {}), FdType::Socket);
  EXPECT_EQ(fd_kind_info(t.records[0].type)->state_refusal(t, t.records[0]),
            "listening TCPv6 socket with connections not yet accepted");
}

TEST_F(FdState, EpollTargetsRoundTripAndAClosedTargetIsRefused) {
  std::vector<EpollTarget> targets = {{5, 0x19, 0x1234, kEpollTargetOpen, 0}, {6, 0x40000000, 7, 0, 0}};
  Table<FdRecord> t = encode(epoll_state_bytes(targets), FdType::Epoll);
  auto back = epoll_state(t, t.records[0]);
  ASSERT_TRUE(back) << back.error().message();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].data, 0x1234u);
  EXPECT_EQ((*back)[1].events, 0x40000000u);
  EXPECT_EQ(fd_kind_info(t.records[0].type)->describe(t, t.records[0]),
            "2 targets: fd 5 events 0x19 data 0x1234; fd 6 events 0x40000000 data 0x7 (closed)");
  EXPECT_EQ(fd_kind_info(t.records[0].type)->state_refusal(t, t.records[0]),
            "eventpoll whose target fd 6 was closed but is still in its interest set");
}
