// imgtool restore --pidns: the restore runs in a new pid namespace with its
// own /proc, where the original pid is free even while the original runs;
// the exit status, --detach and --pidfile (the pid outside) work as
// without it, and several restores of one image run at once.
#include <gtest/gtest.h>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class RestorePidns : public ReportingRestoreTest {
 protected:
  // The report lines "pid P getpid G ppid Q ns NS proc_self S".
  std::vector<std::vector<std::string>> pid_lines() const {
    std::vector<std::vector<std::string>> out;
    for (const std::string &line : split_lines(report())) {
      if (line.rfind("pid ", 0) != 0) continue;
      std::vector<std::string> words = test::split_on(line, ' ');
      if (words.size() == 10) out.push_back({words[1], words[3], words[5], words[7], words[9]});
    }
    return out;
  }
  static std::string our_pid_ns() {
    char ns[64] = "";
    return readlink("/proc/self/ns/pid", ns, sizeof ns - 1) > 0 ? ns : "";
  }
  // The children of pid (its main thread's).
  static std::vector<pid_t> children_of(pid_t pid) {
    std::vector<pid_t> out;
    std::string text = read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    size_t at = 0;
    while (at < text.size()) {
      size_t end = text.find(' ', at);
      if (end == std::string::npos) end = text.size();
      if (end > at) out.push_back(std::stoi(text.substr(at, end - at)));
      at = end + 1;
    }
    return out;
  }
  // The restore `tool` runs its restored root (`inner` inside its
  // namespace) under its init: the outside pid of that root, or 0.
  static pid_t restored_under(pid_t tool, pid_t inner) {
    for (pid_t init : children_of(tool))
      for (pid_t p : children_of(init)) {
        std::string status = read_file("/proc/" + std::to_string(p) + "/status");
        size_t at = status.find("\nNSpid:");
        if (at == std::string::npos) continue;
        std::string nspid = status.substr(at + 7, status.find('\n', at + 1) - at - 7);
        if (nspid.substr(nspid.find_last_of(" \t") + 1) == std::to_string(inner)) return p;
      }
    return 0;
  }
};

// The pid is taken by the running original: two restores of its image at
// once, each in its own namespace, each with the original pid.
TEST_F(RestorePidns, TwoRestoresAtOnceWhileTheOriginalRuns) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_PIDNS_PATH, {"exit:7"}));
  RunResult d = dump(pid_, image_path());  // leave running
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  // Without --pidns: refused, naming the pid's owner.
  RunResult taken = restore(image_path());
  expect_one_line_failure(taken, "pid " + std::to_string(pid_) + " is in use by another process (restore_pidns)");
  Program::Options o1, o2;
  o1.stdout_file = tmp_.file("imgtool1.out");
  o1.log = tmp_.file("imgtool1.err");
  o2.stdout_file = tmp_.file("imgtool2.out");
  o2.log = tmp_.file("imgtool2.err");
  Program first({imgtool(), "restore", "--pidns", image_path()}, o1);
  Program second({imgtool(), "restore", "--pidns", image_path()}, o2);
  ASSERT_TRUE(first.ready()) << first.error();
  ASSERT_TRUE(second.ready()) << second.error();
  // Both restored copies run at once, each in its namespace, before any
  // goes on (a namespace freed early could lend its inode number to the next).
  ASSERT_TRUE(wait_until([&] { return restored_under(first.pid(), pid_) && restored_under(second.pid(), pid_); }, 30))
      << read_file(o1.log) << read_file(o2.log);
  ASSERT_NO_FATAL_FAILURE(go());  // all three go on now
  int st1 = 0, st2 = 0, st0 = 0;
  ASSERT_TRUE(first.wait_exit(&st1, 60)) << "first restore hung; report:\n" << report();
  ASSERT_TRUE(second.wait_exit(&st2, 60)) << "second restore hung; report:\n" << report();
  ASSERT_TRUE(program_->wait_exit(&st0, 30));
  EXPECT_TRUE(WIFEXITED(st1) && WEXITSTATUS(st1) == 7) << std::hex << st1 << " " << read_file(o1.log);
  EXPECT_TRUE(WIFEXITED(st2) && WEXITSTATUS(st2) == 7) << std::hex << st2 << " " << read_file(o2.log);
  EXPECT_TRUE(WIFEXITED(st0) && WEXITSTATUS(st0) == 7) << std::hex << st0;
  EXPECT_EQ(read_file(o1.log), "");
  EXPECT_EQ(read_file(o2.log), "");
  EXPECT_EQ(count(report(), "PASS"), 3) << report();
  auto lines = pid_lines();
  ASSERT_EQ(lines.size(), 3u) << report();
  std::vector<std::string> namespaces;
  for (const auto &l : lines) {
    EXPECT_EQ(l[0], std::to_string(pid_)) << report();
    EXPECT_EQ(l[1], std::to_string(pid_)) << "getpid() differs; report:\n" << report();
    EXPECT_EQ(l[4], std::to_string(pid_)) << "/proc/self differs; report:\n" << report();
    if (l[3] != our_pid_ns()) {
      namespaces.push_back(l[3]);
      // Its parent is the namespace's init.
      EXPECT_EQ(l[2], "1") << report();
    }
  }
  ASSERT_EQ(namespaces.size(), 2u) << "expected two restores in namespaces other than ours; report:\n" << report();
  EXPECT_NE(namespaces[0], namespaces[1]) << report();
}

TEST_F(RestorePidns, PassesOnTheExitStatusAndDeathBySignal) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_PIDNS_PATH, {"signal:" + std::to_string(SIGTERM)}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(128 + SIGTERM, {"--pidns"}));
  auto lines = pid_lines();
  ASSERT_EQ(lines.size(), 1u) << report();
  EXPECT_NE(lines[0][3], our_pid_ns()) << "not restored in a new pid namespace";
  EXPECT_EQ(lines[0][1], std::to_string(pid_));
}

// --detach --pidfile: the pid file holds the root's pid here, outside its
// namespace, and the restored root runs on with its original pid inside.
TEST_F(RestorePidns, DetachWritesThePidSeenOutside) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_PIDNS_PATH, {"run"}));
  RunResult d = dump(pid_, image_path());  // leave running: the pid stays taken here
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  std::string pidfile = tmp_.file("restored.pid");
  RunResult r = restore(image_path(), {"--pidns", "--detach", "--pidfile", pidfile}, 60);
  ASSERT_FALSE(r.timed_out) << "--detach did not return";
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_EQ(r.err, "");
  std::string text = read_file(pidfile);
  ASSERT_FALSE(text.empty());
  pid_t outside = std::stoi(text);
  EXPECT_NE(outside, pid_);
  std::string status = read_file("/proc/" + std::to_string(outside) + "/status");
  size_t at = status.find("\nNSpid:");
  ASSERT_NE(at, std::string::npos) << status;
  std::string nspid = status.substr(at + 7, status.find('\n', at + 1) - at - 7);
  EXPECT_EQ(nspid.substr(nspid.find_last_of(" \t") + 1), std::to_string(pid_)) << "NSpid:" << nspid;
  ASSERT_NO_FATAL_FAILURE(go());
  ASSERT_TRUE(wait_until([&] { return count(report(), "tick") >= 10; }, 20)) << report();
  EXPECT_EQ(count(report(), "PASS"), 2) << report();
  // Killing the root ends its namespace: the init (our child since imgtool
  // returned) exits with 128+9.
  pid_t init = proc_ppid(outside);
  ASSERT_EQ(kill(outside, SIGKILL), 0);
  int init_status = 0;
  ASSERT_TRUE(test::wait_child_exit(init, &init_status, 10)) << "the init " << init << " did not end";
  EXPECT_TRUE(WIFEXITED(init_status) && WEXITSTATUS(init_status) == 128 + SIGKILL) << std::hex << init_status;
  EXPECT_FALSE(pid_exists(outside));
  ASSERT_EQ(kill(pid_, SIGKILL), 0);
  int st = 0;
  ASSERT_TRUE(program_->wait_exit(&st, 10));
}

// SIGTERM to a foreground imgtool restore --pidns reaches the restored root.
TEST_F(RestorePidns, ForegroundForwardsSigterm) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_PIDNS_PATH, {"run"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  ASSERT_NO_FATAL_FAILURE(expect_sigterm_forwarded({"restore", "--pidns", image_path()}));
}

}  // namespace
}  // namespace ckpt::restoretest
