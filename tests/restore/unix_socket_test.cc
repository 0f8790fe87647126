// AF_UNIX sockets (issue 13; #9 for pairs across a tree): real programs
// (restore_unix.c) holding socketpairs with data queued both ways,
// listeners on a path and in the abstract namespace, a connected
// client/accepted pair, a pair split between parent and child; dumped with
// --kill, restored, and checking every queue, boundary, option and
// shutdown state themselves. A peer outside the tree and descriptors in
// flight are refused at dump, leaving the program running.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

using json = nlohmann::json;

class RestoreUnix : public RestoreTest {
 protected:
  // fd -> `info --json` state of each socket of process `index`.
  std::map<int, std::string> socket_states(size_t index = 0) { return fd_states("socket", index); }

  // A refused dump: one line naming the pid, the fd and why; no image;
  // the program still runs and finishes its own checks.
  void expect_refused(const std::string &why) {
    ASSERT_NO_FATAL_FAILURE(expect_dump_kill_refused("fd 40 ", why));
    char s = proc_state(pid_);
    EXPECT_TRUE(s == 'S' || s == 'R') << "state " << s;
    ASSERT_NO_FATAL_FAILURE(expect_original_finishes(30));
    EXPECT_NE(log().find("PASS"), std::string::npos) << log();
  }
};

TEST_F(RestoreUnix, SocketpairsKeepQueuesBoundariesOptionsAndShutdown) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_UNIX_PATH, {"pairs"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::map<int, std::string> s = socket_states();
  EXPECT_NE(s[41].find("unix stream, peer socket:["), std::string::npos) << s[41];
  EXPECT_NE(s[41].find("11 bytes queued"), std::string::npos) << s[41];
  EXPECT_NE(s[40].find("SO_PASSCRED"), std::string::npos) << s[40];
  EXPECT_NE(s[43].find("unix dgram"), std::string::npos) << s[43];
  EXPECT_NE(s[43].find("6 bytes queued in 3 messages"), std::string::npos) << s[43];
  EXPECT_NE(s[45].find("shut down for writing"), std::string::npos) << s[45];
  EXPECT_NE(s[46].find("peer closed"), std::string::npos) << s[46];
  // gdb's `ckpt fds` shows the same state beside each socket.
  RunResult g = gdb_ckpt_fds();
  EXPECT_TRUE(g.exited && g.exit_code == 0) << g.status() << "\n" << g.err;
  EXPECT_NE(g.out.find("(unix dgram, peer socket:["), std::string::npos) << g.out;
  EXPECT_NE(g.out.find("6 bytes queued in 3 messages)"), std::string::npos) << g.out;
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// The stale socket file the killed program left at the path is replaced;
// new clients connect after the restore.
TEST_F(RestoreUnix, ListenersOnAPathAndAbstractTakeNewClients) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_UNIX_PATH, {"listen"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::map<int, std::string> s = socket_states();
  EXPECT_NE(s[40].find("listening (backlog 7), bound to " + dir() + "/stream.sock"), std::string::npos) << s[40];
  EXPECT_NE(s[41].find("unix seqpacket, listening (backlog 3), bound to @ckpt-test-"), std::string::npos) << s[41];
  EXPECT_NE(s[42].find("2 messages"), std::string::npos) << s[42];
  ASSERT_EQ(access((dir() + "/stream.sock").c_str(), F_OK), 0) << "the original's socket file should still be there";
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// A path that a live socket holds (here the test's own listener, bound
// there after the dump) is refused before anything is restored; the
// socket file is left alone.
TEST_F(RestoreUnix, LivePathIsRefusedAtRestore) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_UNIX_PATH, {"listen"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::string path = dir() + "/stream.sock";
  ASSERT_EQ(unlink(path.c_str()), 0);
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(l, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size());
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  ASSERT_EQ(listen(l, 4), 0);
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restore(image_path());
  expect_one_line_failure(r, "fd 40: socket path " + path + " is in use by a live socket");
  EXPECT_EQ(access(path.c_str(), F_OK), 0) << "the live socket's file was removed";
  close(l);
}

TEST_F(RestoreUnix, PairsBetweenParentAndChild) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_UNIX_PATH, {"tree"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::map<int, std::string> child = socket_states(1);
  EXPECT_NE(child[43].find("unix seqpacket, peer socket:["), std::string::npos) << child[43];
  EXPECT_NE(child[43].find("4 bytes queued in 2 messages"), std::string::npos) << child[43];
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(RestoreUnix, PeerOutsideTheTreeIsRefused) {
  // The test's own listener: the program's connection is to a socket in
  // no process of the dumped tree.
  std::string name = "ckpt-outside-" + std::to_string(getpid());
  int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(l, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  ASSERT_EQ(bind(l, reinterpret_cast<sockaddr *>(&a), socklen_t(offsetof(sockaddr_un, sun_path) + 1 + name.size())), 0);
  ASSERT_EQ(listen(l, 4), 0);
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_UNIX_PATH, {"peer", name}));
  EXPECT_NO_FATAL_FAILURE(expect_refused("AF_UNIX stream socket connected to a peer outside the dumped processes"));
  close(l);
}

TEST_F(RestoreUnix, DescriptorsInFlightAreRefused) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_UNIX_PATH, {"rights"}));
  // fd 41 holds the message; fd 40 is named first when both are refused.
  RunResult r = dump(pid_, image_path(), {"--kill"});
  ASSERT_TRUE(r.exited);
  EXPECT_NE(r.exit_code, 0);
  ASSERT_EQ(r.err_lines().size(), 1u) << r.err;
  EXPECT_NE(r.err.find("fd 41 AF_UNIX stream socket with file descriptors in flight (SCM_RIGHTS queued)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(access(image_path().c_str(), F_OK), 0) << "a refused dump wrote the image";
  ASSERT_NO_FATAL_FAILURE(expect_original_finishes(30));
}

}  // namespace
}  // namespace ckpt::restoretest
