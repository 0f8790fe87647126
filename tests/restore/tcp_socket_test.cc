// TCP and UDP sockets (issue 13): real programs (restore_tcp.c) holding
// listeners over IPv4 and IPv6, established connections inside the
// process with bytes queued both ways (most of a send queue never sent),
// UDP sockets bound and connected with datagrams queued, and a connection
// to a peer outside the dumped process (the test itself) that carries on
// after the restore with no reset and no byte lost or repeated; dumped
// with --kill, restored, checking themselves.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <ckpt/img/net_lock.h>
#include <nlohmann/json.hpp>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

using json = nlohmann::json;

unsigned char pattern(unsigned long i, unsigned seed) { return (unsigned char)((i * 131 + seed + (i >> 9)) & 0xff); }

// The network locks here whose connection's peer port is `peer_port`.
std::vector<std::string> locks_with_peer_port(const std::string &peer_port) {
  auto names = img::net_lock_names();
  EXPECT_TRUE(names) << names.error().message();
  std::vector<std::string> out;
  std::string tail = "_" + peer_port;
  if (names)
    for (const std::string &n : *names)
      if (n.size() > tail.size() && n.compare(n.size() - tail.size(), tail.size(), tail) == 0) out.push_back(n);
  return out;
}

// A listener on 127.0.0.1 with a port of the kernel's choice.
int loopback_listener(unsigned short &port) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (l < 0 || bind(l, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || listen(l, 1) != 0 ||
      getsockname(l, reinterpret_cast<sockaddr *>(&a), &len) != 0)
    return -1;
  port = ntohs(a.sin_port);
  return l;
}

class RestoreTcp : public RestoreTest {
 protected:
  // fd -> `info --json` state of each socket.
  std::map<int, std::string> socket_states() { return fd_states("socket"); }
};

TEST_F(RestoreTcp, ListenersKeepAddressBacklogAndOptions) {
  compare_state_ = true;
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TCP_PATH, {"listen"}));
  std::string port = program_->value("port"), port6 = program_->value("port6");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::map<int, std::string> s = socket_states();
  EXPECT_EQ(s[40], "tcp LISTEN 127.0.0.1:" + port + ", backlog 7, SO_REUSEADDR");
  EXPECT_EQ(s[41], "tcp6 LISTEN [::1]:" + port6 + ", backlog 3, IPV6_V6ONLY");
  // gdb's `ckpt fds` shows the same beside each socket.
  RunResult g = gdb_ckpt_fds();
  EXPECT_TRUE(g.exited && g.exit_code == 0) << g.status() << "\n" << g.err;
  EXPECT_NE(g.out.find("(tcp6 LISTEN [::1]:" + port6 + ", backlog 3"), std::string::npos) << g.out;
  ASSERT_NO_FATAL_FAILURE(restore_compare_expect(0));
}

TEST_F(RestoreTcp, EstablishedPairInsideTheProcessKeepsBothQueues) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TCP_PATH, {"pair4"}));
  ASSERT_GT(std::stol(program_->value("outq")), 0) << "nothing was left in the send queue";
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::map<int, std::string> s = socket_states();
  std::string port = program_->value("port");
  EXPECT_NE(s[41].find("tcp ESTABLISHED 127.0.0.1:"), std::string::npos) << s[41];
  EXPECT_NE(s[41].find(" -> 127.0.0.1:" + port + ", seq snd "), std::string::npos) << s[41];
  EXPECT_NE(s[41].find("29 bytes to read"), std::string::npos) << s[41];
  EXPECT_NE(s[41].find("TCP_NODELAY, SO_KEEPALIVE"), std::string::npos) << s[41];
  EXPECT_NE(s[42].find("tcp ESTABLISHED 127.0.0.1:" + port + " -> 127.0.0.1:"), std::string::npos) << s[42];
  // Both ends locked by the dump (fd 41's lock names the listener's port
  // as its peer), both unlocked by the restore.
  EXPECT_EQ(locks_with_peer_port(port).size(), 1u);
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_TRUE(locks_with_peer_port(port).empty()) << "the restore left a lock";
}

TEST_F(RestoreTcp, EstablishedPairOverIpv6) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TCP_PATH, {"pair6"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::map<int, std::string> s = socket_states();
  EXPECT_NE(s[42].find("tcp6 ESTABLISHED [::1]:" + program_->value("port") + " -> [::1]:"), std::string::npos)
      << s[42];
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(RestoreTcp, UdpBoundAndConnectedKeepQueuedDatagrams) {
  compare_state_ = true;
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TCP_PATH, {"udp"}));
  std::string port = program_->value("port"), port41 = program_->value("port41");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::map<int, std::string> s = socket_states();
  EXPECT_EQ(s[40], "udp 127.0.0.1:" + port + ", 2 datagrams queued");
  EXPECT_EQ(s[41], "udp 127.0.0.1:" + port41 + " -> 127.0.0.1:" + port + ", 1 datagram queued");
  ASSERT_NO_FATAL_FAILURE(restore_compare_expect(0));
}

// The peer is this test: it sees no end of stream and no reset while the
// program is dumped, killed and restored, and the stream goes on with
// every byte once.
TEST_F(RestoreTcp, ConnectionToAPeerOutsideCarriesOn) {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(l, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  ASSERT_EQ(listen(l, 1), 0);
  ASSERT_EQ(getsockname(l, reinterpret_cast<sockaddr *>(&a), &len), 0);
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TCP_PATH, {"peer", std::to_string(ntohs(a.sin_port))}));
  int c = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(c, 0);
  close(l);
  auto read_pattern = [&](unsigned long from, size_t n, unsigned seed) {
    std::vector<unsigned char> buf(n);
    size_t got = 0;
    while (got < n) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 20000) != 1) break;
      ssize_t r = recv(c, buf.data() + got, n - got, 0);
      if (r <= 0) break;
      got += size_t(r);
    }
    EXPECT_EQ(got, n) << "the stream ended or stalled";
    for (size_t i = 0; i < got; i++)
      if (buf[i] != pattern(from + i, seed)) {
        ADD_FAILURE() << "byte " << from + i << " differs";
        break;
      }
  };
  auto write_pattern = [&](unsigned long from, size_t n, unsigned seed) {
    std::vector<unsigned char> buf(n);
    for (size_t i = 0; i < n; i++) buf[i] = pattern(from + i, seed);
    size_t done = 0;
    while (done < n) {
      ssize_t w = send(c, buf.data() + done, n - done, MSG_NOSIGNAL);
      if (w <= 0) break;
      done += size_t(w);
    }
    EXPECT_EQ(done, n) << strerror(errno);
  };
  read_pattern(0, 1000, 7);
  write_pattern(0, 500, 8);
  // Let the 500 bytes reach the program's receive queue (and be acknowledged).
  usleep(200 * 1000);
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::map<int, std::string> s = socket_states();
  EXPECT_NE(s[40].find("500 bytes to read"), std::string::npos) << s[40];
  // No FIN, no RST: the killed original closed in repair mode.
  pollfd p{c, POLLIN | POLLRDHUP, 0};
  EXPECT_EQ(poll(&p, 1, 300), 0) << "the peer saw revents 0x" << std::hex << p.revents;
  std::string pidfile = tmp_.file("restored.pid");
  RunResult r = restore(image_path(), {"--detach", "--pidfile", pidfile});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err << "\n" << log();
  ASSERT_NO_FATAL_FAILURE(go());
  read_pattern(1000, 100000, 7);
  write_pattern(500, 100000, 8);
  int st = 0;
  ASSERT_TRUE(test::wait_child_exit(pid_, &st, 60)) << log();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st << "\n" << log();
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
  close(c);
}

// The network lock (decision 164): the test sends a pattern stream
// without pause while the program is dumped with --kill, left dead for a
// while, and restored. The dump locks the connection (its packets are
// dropped, so the test's TCP retransmits them), the restore unlocks it:
// the test never sees a reset, and the program gets every byte once (it
// checks each one and sends back the count). Without the lock, bytes sent
// after the dump read the queues were acknowledged by the original and
// lost, and those sent after the kill were answered with a reset.
TEST_F(RestoreTcp, NetworkLockKeepsAStreamWholeThroughDumpKillAndRestore) {
  unsigned short listen_port = 0;
  int l = loopback_listener(listen_port);
  ASSERT_GE(l, 0) << strerror(errno);
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TCP_PATH, {"stream", std::to_string(listen_port)}));
  int c = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  ASSERT_GE(c, 0);
  close(l);
  std::string lock = "ckpt_lock_7f000001_" + program_->value("port") + "_7f000001_" + std::to_string(listen_port);
  std::atomic<bool> stop{false};
  std::atomic<unsigned long> sent{0};
  std::atomic<int> send_error{0};
  std::thread sender([&] {
    unsigned char buf[1000];
    while (!stop) {
      unsigned long from = sent;
      for (size_t i = 0; i < sizeof buf; i++) buf[i] = pattern(from + i, 9);
      size_t done = 0;
      while (done < sizeof buf) {
        ssize_t w = send(c, buf + done, sizeof buf - done, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          send_error = errno;
          return;
        }
        done += size_t(w);
      }
      sent += sizeof buf;
      usleep(500);
    }
  });
  auto wait_sent = [&](unsigned long at_least) {
    for (int i = 0; i < 60000 && sent < at_least && !send_error; i++) usleep(1000);
    return sent >= at_least;
  };
  EXPECT_TRUE(wait_sent(100000)) << "the stream did not start: " << strerror(send_error);
  RunResult d = dump(pid_, image_path(), {"--kill"});
  EXPECT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  int killed = 0;
  EXPECT_TRUE(program_->wait_exit(&killed, 10)) << "still alive after dump --kill";
  std::vector<std::string> locks = locks_with_peer_port(std::to_string(listen_port));
  EXPECT_EQ(locks, std::vector<std::string>{lock}) << "the dump did not lock the connection";
  // The program is gone; the test keeps sending into its locked connection.
  unsigned long before = sent;
  EXPECT_TRUE(wait_sent(before + 20000)) << "sending stopped while locked: " << strerror(send_error);
  pollfd p{c, POLLIN | POLLRDHUP, 0};
  EXPECT_EQ(poll(&p, 1, 300), 0) << "the peer saw revents 0x" << std::hex << p.revents;
  std::string pidfile = tmp_.file("restored.pid");
  RunResult r = restore(image_path(), {"--detach", "--pidfile", pidfile});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err << "\n" << log();
  EXPECT_TRUE(locks_with_peer_port(std::to_string(listen_port)).empty()) << "the restore left the lock";
  before = sent;
  EXPECT_TRUE(wait_sent(before + 200000)) << "the stream did not go on: " << strerror(send_error);
  stop = true;
  sender.join();
  EXPECT_EQ(send_error, 0) << "the peer's send failed: " << strerror(send_error);
  shutdown(c, SHUT_WR);
  std::string reply;
  char b[64];
  for (;;) {
    pollfd q{c, POLLIN, 0};
    if (poll(&q, 1, 60000) != 1) break;
    ssize_t n = recv(c, b, sizeof b, 0);
    if (n <= 0) break;
    reply.append(b, size_t(n));
  }
  EXPECT_EQ(reply, "total " + std::to_string(sent.load()) + "\n") << log();
  int st = 0;
  ASSERT_TRUE(test::wait_child_exit(pid_, &st, 60)) << log();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st << "\n" << log();
  close(c);
}

// A pre-fork server: a listener and an established connection inherited
// by a forked worker are one socket each in the tree, made once (in the
// root, before the fork) and held by both processes. After the restore
// the worker and the parent each accept and serve a new client on the
// listener, and both write on the shared connection.
TEST_F(RestoreTcp, PreforkWorkerAndParentShareTheListenerAndAConnection) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TCP_PATH, {"prefork"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::map<int, std::string> s = socket_states();
  EXPECT_EQ(s[40].rfind("tcp LISTEN 127.0.0.1:" + program_->value("port") + ", backlog 8", 0), 0u) << s[40];
  EXPECT_NE(s[42].find("tcp ESTABLISHED 127.0.0.1:" + program_->value("port") + " -> "), std::string::npos) << s[42];
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// A dump that leaves the program running takes its connections out of
// repair mode again: the original carries on. Restoring a copy while it
// runs is refused in one line (its addresses are taken).
TEST_F(RestoreTcp, LeaveRunningOriginalCarriesOnAndACopyIsRefused) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TCP_PATH, {"pair4"}));
  RunResult d = dump(pid_, image_path());
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  // In a new pid namespace, where the original's pids are free: only the
  // addresses stand in the way.
  RunResult r = restore(image_path(), {"--pidns"});
  expect_one_line_failure(r, "fd 40: cannot bind TCP to 127.0.0.1:" + program_->value("port") +
                                 ": Address already in use (is the dumped process still running?)");
  ASSERT_NO_FATAL_FAILURE(expect_original_finishes(60));
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
}

// Refused at dump in one line naming the fd and why; nothing is killed,
// and the original carries on with its connections (taken out of repair
// mode again) and finishes its own checks.
TEST_F(RestoreTcp, OtherStatesAndPendingConnectionsAreRefusedAtDump) {
  const std::pair<const char *, std::string> cases[] = {
      {"closewait", "fd 41 TCP socket in state CLOSE_WAIT (only LISTEN, ESTABLISHED and CLOSE are restored)"},
      {"pending", "fd 40 listening TCP socket with connections not yet accepted"}};
  for (const auto &[mode, why] : cases) {
    SCOPED_TRACE(mode);
    ASSERT_NO_FATAL_FAILURE(start(RESTORE_TCP_PATH, {mode}));
    ASSERT_NO_FATAL_FAILURE(expect_dump_kill_refused("", why));
    // pending: fd 41 is an established connection to fd 40, locked
    // before the refusal; the failed dump removed the lock.
    EXPECT_TRUE(locks_with_peer_port(program_->value("port")).empty()) << "the refused dump left its lock";
    ASSERT_NO_FATAL_FAILURE(expect_original_finishes(30));
    unlink(go_path().c_str());
  }
}

}  // namespace
}  // namespace ckpt::restoretest
