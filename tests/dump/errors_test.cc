// Dumps that must fail: non-zero exit, exactly one line on stderr starting
// "imgtool dump: ", no file at the destination (the directory listing is
// unchanged: no temporary file either), and the target as it was.
#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <regex>
#include <set>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dump_common.h"

namespace ckpt::dumptest {
namespace {

TEST(DumpErrors, NoSuchPid) {
  // A pid that existed a moment ago: a reaped child of ours.
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  ASSERT_GT(gone, 0);
  int st;
  ASSERT_EQ(waitpid(gone, &st, 0), gone);
  ASSERT_TRUE(kill(gone, 0) != 0 && errno == ESRCH) << "pid " << gone << " was reused";
  TempDir tmp;
  std::string dest = tmp.file("img.core");
  expect_one_line_failure(dump(gone, dest), "no process");
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{});
}

TEST(DumpErrors, NotPermitted) {
  std::string setpriv = test::find_tool({"setpriv"});
  ASSERT_NE(setpriv, "") << "setpriv (util-linux) is needed";
  ASSERT_EQ(geteuid(), 0u) << "this test runs as root";
  Target t({DUMP_SLEEPER_PATH});  // owned by root
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  // A directory user nobody can write to, so that only ptrace is refused.
  ASSERT_EQ(chmod(tmp.path().c_str(), 0777), 0);
  std::string dest = tmp.file("img.core");
  RunResult r = test::run({setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", imgtool(), "dump", "--pid",
                           std::to_string(t.pid()), "-o", dest},
                          120);
  expect_one_line_failure(r, "not permitted");
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{});
  expect_running_untraced(t.pid());
}

TEST(DumpErrors, OutputIsASymlink) {
  Target t({DUMP_SLEEPER_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp, elsewhere;
  std::string victim = elsewhere.file("precious.txt");
  ASSERT_TRUE(write_file(victim, "precious contents\n"));
  std::string dest = tmp.file("img.core");
  ASSERT_EQ(symlink(victim.c_str(), dest.c_str()), 0);
  std::vector<std::string> before = dir_listing(tmp.path());
  expect_one_line_failure(dump(t.pid(), dest), "symbolic link");
  EXPECT_EQ(dir_listing(tmp.path()), before);
  EXPECT_EQ(dir_listing(elsewhere.path()), std::vector<std::string>{"precious.txt"});
  EXPECT_EQ(read_file(victim), "precious contents\n");
  struct stat st;
  ASSERT_EQ(lstat(dest.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  expect_running_untraced(t.pid());
}

TEST(DumpErrors, OutputIsADirectory) {
  Target t({DUMP_SLEEPER_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  std::string dest = tmp.file("adir");
  ASSERT_EQ(mkdir(dest.c_str(), 0755), 0);
  expect_one_line_failure(dump(t.pid(), dest), "directory");
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{"adir"});
  EXPECT_EQ(dir_listing(dest), std::vector<std::string>{});
  expect_running_untraced(t.pid());
}

// A 256 KiB tmpfs cannot hold 8 MiB of memory.
TEST(DumpErrors, DiskFull) {
  TempDir tmp;
  std::string mnt = tmp.file("small");
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << strerror(errno);
  struct Unmount {  // declared after tmp, so it runs before tmp is removed
    std::string dir;
    ~Unmount() { umount2(dir.c_str(), MNT_DETACH); }
  } unmount{mnt};
  Target t({DUMP_BIGMEM_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  std::string dest = mnt + "/img.core";
  expect_one_line_failure(dump(t.pid(), dest), "no space");
  EXPECT_EQ(dir_listing(mnt), std::vector<std::string>{});
  expect_running_untraced(t.pid());
}

// Best effort: the target exits right after "ready" (after churning a
// varying number of short-lived threads), racing the dump. Every attempt
// must either succeed with an image that verifies or fail cleanly: one
// line, no file, and not a misleading "not permitted". The target must
// never be left stopped (it exits with status 0 by itself). 40 attempts,
// with the exit spread over the dump.
TEST(DumpErrors, TargetExitsDuringDump) {
  const std::regex names_exit("exit|no process|zombie|no such process|no such file|gone", std::regex::icase);
  int successes = 0, exit_failures = 0, other_failures = 0;
  const int rounds[] = {0, 0, 20, 50, 100, 200, 400, 800, 1500, 3000};
  std::set<std::string> messages;
  for (int i = 0; i < 40; i++) {
    SCOPED_TRACE("attempt " + std::to_string(i));
    Target t({DUMP_EXIT_PATH, std::to_string(rounds[i % 10])});
    ASSERT_TRUE(t.ready()) << t.error();
    TempDir tmp;
    std::string dest = tmp.file("img.core");
    RunResult r = dump(t.pid(), dest);
    ASSERT_TRUE(r.exited) << r.status();
    if (r.exit_code == 0) {
      successes++;
      EXPECT_EQ(r.err, "");
      RunResult v = verify_intact(dest);
      EXPECT_EQ(v.exit_code, 0) << v.status() << "\n" << v.err;
      EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{"img.core"});
    } else {
      expect_one_line_failure(r, "");
      EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{});
      messages.insert(r.err);
      if (std::regex_search(r.err, names_exit)) {
        exit_failures++;
      } else {
        other_failures++;
        // A process that exits is not a permission problem: saying so
        // would send the user looking in the wrong place.
        EXPECT_EQ(test::lower(r.err).find("permitted"), std::string::npos) << "misleading: " << r.err;
      }
    }
    int status = 0;
    ASSERT_TRUE(t.wait_exit(&status, 10)) << "the target did not exit: left stopped?";
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status 0x" << std::hex << status;
    if (HasFatalFailure()) return;
  }
  RecordProperty("successes", successes);
  RecordProperty("exit_failures", exit_failures);
  std::printf("dumps racing exit: %d succeeded, %d failed naming the exit, %d failed otherwise\n", successes,
              exit_failures, other_failures);
  for (const std::string &m : messages) std::printf("  %s", m.c_str());
}

// Once refused ("not supported yet"); now the child is part of the image.
TEST(DumpErrors, TargetWithChildProcessDumpsTheTree) {
  Target t({DUMP_FORK_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  std::string children = read_file("/proc/" + std::to_string(t.pid()) + "/task/" + std::to_string(t.pid()) +
                                   "/children");
  pid_t child = static_cast<pid_t>(std::atoi(children.c_str()));
  ASSERT_GT(child, 0) << "no child listed: '" << children << "'";
  TempDir tmp;
  expect_success(dump(t.pid(), tmp.file("img.core")));
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{"img.core"});
  expect_running_untraced(t.pid());
  expect_running_untraced(child);
}

/// A forked tracer that PTRACE_SEIZEs pid and holds it until destroyed.
class Tracer {
 public:
  explicit Tracer(pid_t target) {
    int hold[2], rep[2];
    if (pipe2(hold, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(hold[1]);
      close(rep[0]);
      char c = ptrace(PTRACE_SEIZE, target, 0, 0) == 0 ? 'y' : 'n';
      if (write(rep[1], &c, 1) != 1) _exit(1);
      while (read(hold[0], &c, 1) != 0) {  // until the test closes its end
      }
      _exit(0);  // exiting detaches
    }
    close(hold[0]);
    close(rep[1]);
    hold_ = hold[1];
    char c = 0;
    if (pid_ > 0 && read(rep[0], &c, 1) == 1) seized_ = c == 'y';
    close(rep[0]);
  }
  ~Tracer() {
    if (hold_ >= 0) close(hold_);
    if (pid_ > 0) {
      int st;
      while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
  bool seized() const { return seized_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int hold_ = -1;
  bool seized_ = false;
};

TEST(DumpErrors, AlreadyTraced) {
  Target t({DUMP_SLEEPER_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  {
    Tracer tracer(t.pid());
    ASSERT_TRUE(tracer.seized());
    ASSERT_EQ(tracer_pid(t.pid()), tracer.pid());
    TempDir tmp;
    expect_one_line_failure(dump(t.pid(), tmp.file("img.core")), "already being traced");
    EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{});
    // As it was: running, still traced by the same tracer.
    char s = proc_state(t.pid());
    EXPECT_TRUE(s == 'R' || s == 'S') << s;
    EXPECT_EQ(tracer_pid(t.pid()), tracer.pid());
  }
  expect_running_untraced(t.pid());
}


// The output names the parent itself: the dump would replace PREV by an
// increment that needs it (data loss). Refused before anything is
// stopped; PREV is left as it was and still verifies.
TEST(DumpErrors, OutputIsItsOwnParent) {
  Target t({DUMP_SLEEPER_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  std::string b1 = tmp.file("b1.core");
  ASSERT_NO_FATAL_FAILURE(expect_success(dump(t.pid(), b1)));
  std::string before = read_file(b1);
  expect_one_line_failure(dump(t.pid(), b1, {"--parent", "b1.core"}), "of the --parent chain");
  EXPECT_TRUE(read_file(b1) == before) << "the parent image changed";
  RunResult v = verify_intact(b1);
  EXPECT_TRUE(v.exited && v.exit_code == 0) << v.err;
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{"b1.core"});
  expect_running_untraced(t.pid());
}

// The output names an image further up the chain (b.core's parent is
// a.core; -o a.core --parent b.core): refused too, the chain intact.
TEST(DumpErrors, OutputIsALinkOfTheParentChain) {
  Target t({DUMP_SLEEPER_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  std::string a = tmp.file("a.core"), b = tmp.file("b.core");
  ASSERT_NO_FATAL_FAILURE(expect_success(dump(t.pid(), a)));
  ASSERT_NO_FATAL_FAILURE(expect_success(dump(t.pid(), b, {"--parent", "a.core"})));
  std::string a_before = read_file(a), b_before = read_file(b);
  expect_one_line_failure(dump(t.pid(), a, {"--parent", "b.core"}), "of the --parent chain");
  EXPECT_TRUE(read_file(a) == a_before) << "a.core changed";
  EXPECT_TRUE(read_file(b) == b_before) << "b.core changed";
  RunResult v = verify_intact(b);
  EXPECT_TRUE(v.exited && v.exit_code == 0) << v.err;
  EXPECT_EQ(dir_listing(tmp.path()), (std::vector<std::string>{"a.core", "b.core"}));
  expect_running_untraced(t.pid());
}

// A relative --parent is taken from FILE's directory (CONTRACT.md); typed
// as a path from here it is missing there, and the one line says how the
// rule reads it and what to give instead.
TEST(DumpErrors, RelativeParentFromHereIsExplained) {
  Target t({DUMP_SLEEPER_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  ASSERT_EQ(mkdir(tmp.file("inc").c_str(), 0755), 0);
  ASSERT_NO_FATAL_FAILURE(expect_success(dump(t.pid(), tmp.file("inc/p1.core"))));
  RunResult r = test::run({"/bin/sh", "-c",
                           "cd '" + tmp.path() + "' && exec '" + imgtool() + "' dump --pid " +
                               std::to_string(t.pid()) + " -o inc/p2.core --parent inc/p1.core"},
                          120);
  expect_one_line_failure(r, "--parent inc/inc/p1.core: ");
  EXPECT_NE(r.err.find("taken from FILE's directory, inc/; the inc/p1.core found from here is --parent p1.core)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(dir_listing(tmp.file("inc")), std::vector<std::string>{"p1.core"});
  // As the hint says, it works.
  RunResult ok = test::run({"/bin/sh", "-c",
                            "cd '" + tmp.path() + "' && exec '" + imgtool() + "' dump --pid " +
                                std::to_string(t.pid()) + " -o inc/p2.core --parent p1.core"},
                           120);
  ASSERT_NO_FATAL_FAILURE(expect_success(ok));
  expect_running_untraced(t.pid());
}

// A kernel thread (kthreadd, pid 2 here) cannot be traced, and has nothing
// to checkpoint: said so, not "not permitted to trace".
TEST(DumpErrors, KernelThread) {
  std::string stat = read_file("/proc/2/stat");
  // In a pid namespace or a container pid 2 is an ordinary process (or none).
  if (stat.find("(kthreadd)") == std::string::npos) GTEST_SKIP() << "pid 2 is not kthreadd here: " << stat;
  TempDir tmp;
  RunResult r = dump(2, tmp.file("img.core"));
  expect_one_line_failure(r, "process 2 (kthreadd) is a kernel thread");
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{});
}

}  // namespace
}  // namespace ckpt::dumptest
