// The target after a dump (running stays running, stopped stays stopped
// with the same registers, never left traced), `-o -`, and `--kill`.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dump_common.h"

namespace ckpt::dumptest {
namespace {

/// Polls (bounded) until the counter at addr differs from `from`.
bool counter_advances(pid_t pid, unsigned long addr, unsigned long from, int timeout_s = 10) {
  return test::wait_until(
      [&] {
        unsigned long v;
        return read_remote_u64(pid, addr, &v) && v != from;
      },
      timeout_s);
}

void expect_keeps_running(const char *program) {
  Target t({program});
  ASSERT_TRUE(t.ready()) << t.error();
  unsigned long addr = std::strtoul(t.value("counter").c_str(), nullptr, 16);
  ASSERT_NE(addr, 0u) << "no \"counter ADDR\" line from " << program;
  TempDir tmp;
  std::string c = tmp.file("img.core");
  expect_success(dump(t.pid(), c));
  ASSERT_TRUE(path_exists(c));
  // Right after the command returns: not stopped, not traced.
  expect_running_untraced(t.pid());
  unsigned long after;
  ASSERT_TRUE(read_remote_u64(t.pid(), addr, &after));
  EXPECT_TRUE(counter_advances(t.pid(), addr, after)) << "the counter of " << program << " stopped at " << after;
  expect_running_untraced(t.pid());
  EXPECT_EQ(verify_intact(c).exit_code, 0);
}

TEST(DumpState, ComputingTargetKeepsRunning) { expect_keeps_running(DUMP_COMPUTE_PATH); }

TEST(DumpState, SleepingTargetKeepsRunning) { expect_keeps_running(DUMP_SLEEPER_PATH); }

/// What gdb shows for a live process's registers (gdb attaches and
/// detaches; a stopped process stays stopped).
std::string live_registers(pid_t pid) {
  RunResult r = run_merged(
      {"gdb", "-batch", "-nx", "-p", std::to_string(pid), "-ex", "thread apply all info registers rip rax orig_rax"});
  return r.status() + "\n" + r.out;
}

TEST(DumpState, StoppedTargetStaysStoppedWithSameRegisters) {
  Target t({DUMP_TLS_THREADS_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  ASSERT_TRUE(t.stop());
  std::string before = live_registers(t.pid());
  ASSERT_NE(before.find("orig_rax"), std::string::npos) << before;
  ASSERT_TRUE(wait_for_state(t.pid(), 'T')) << "gdb left the target running";

  TempDir tmp;
  std::string c = tmp.file("img.core");
  expect_success(dump(t.pid(), c));
  EXPECT_EQ(proc_state(t.pid()), 'T') << "the target is no longer stopped right after the dump";
  EXPECT_EQ(tracer_pid(t.pid()), 0);
  // Had the dump let it run even briefly, the busy thread's registers
  // (and the nanosleep thread's) would differ now.
  std::string after = live_registers(t.pid());
  EXPECT_TRUE(before == after) << "registers changed across the dump (- before, + after):\n"
                               << unified_diff(before, after, "before", "after");
  EXPECT_TRUE(wait_for_state(t.pid(), 'T'));
  EXPECT_EQ(tracer_pid(t.pid()), 0);
  EXPECT_EQ(verify_intact(c).exit_code, 0);
}

/// Processes spinning on every CPU (and one more) until destroyed, so
/// that a thread woken by the kernel waits for a CPU.
class CpuHogs {
 public:
  CpuHogs() {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < std::max(n, 1L); i++) {
      pid_t p = fork();
      if (p == 0) {
        volatile unsigned long x = 0;
        for (;;) x = x + 1;
      }
      if (p > 0) pids_.push_back(p);
    }
  }
  ~CpuHogs() {
    for (pid_t p : pids_) kill(p, SIGKILL);
    for (pid_t p : pids_) waitpid(p, nullptr, 0);
  }

 private:
  std::vector<pid_t> pids_;
};

// The race seen as "after imgtool dump, the target's state is R, not T" on
// a busy machine: PTRACE_DETACH from a group-stopped thread makes it
// runnable until it re-enters the group stop, so a dump that returned
// right after detaching showed a running process for a moment. With the
// target at nice 19 and every CPU busy that moment is long; every thread
// must read 'T' the instant the dump has returned, in each of 12 rounds.
TEST(DumpState, StoppedTargetIsStoppedWhenTheDumpReturnsUnderLoad) {
  Target t({DUMP_TLS_THREADS_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  for (pid_t tid : task_tids(t.pid())) ASSERT_EQ(setpriority(PRIO_PROCESS, tid, 19), 0);  // per thread on Linux
  ASSERT_TRUE(t.stop());
  TempDir tmp;
  CpuHogs hogs;
  int running = 0;
  std::string first;
  for (int i = 0; i < 12; i++) {
    std::string c = tmp.file("stopped" + std::to_string(i % 2) + ".core");
    expect_success(dump(t.pid(), c));
    std::string states;
    for (pid_t tid : task_tids(t.pid())) states += proc_state(tid);
    if (states.find_first_not_of('T') != std::string::npos && running++ == 0)
      first = "round " + std::to_string(i) + ": thread states " + states;
    ASSERT_TRUE(wait_for_state(t.pid(), 'T')) << "round " << i << ": the target does not stop again";
    for (pid_t tid : task_tids(t.pid())) ASSERT_TRUE(wait_for_state(tid, 'T')) << "round " << i << ", thread " << tid;
    EXPECT_EQ(tracer_pid(t.pid()), 0);
  }
  EXPECT_EQ(running, 0) << "of 12 dumps left a thread not stopped when it returned; the first: " << first;
}

// Threads that come and go while the process is being frozen must not make
// the dump fail. Two kernel details make this easy to get wrong: a thread
// created by an already seized thread is auto-attached (PTRACE_O_TRACECLONE)
// and PTRACE_SEIZE on it then fails with EPERM (it is traced, by us); and
// PTRACE_SEIZE on a thread that is exiting fails with EPERM, not ESRCH.
TEST(DumpState, ThreadChurnDoesNotFailTheDump) {
  Target t({DUMP_EXIT_PATH, "-1"});  // creates and joins threads forever
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  int failures = 0;
  std::string first_failure;
  for (int i = 0; i < 60; i++) {
    std::string c = tmp.file("churn" + std::to_string(i) + ".core");
    RunResult r = dump(t.pid(), c);
    if (!(r.exited && r.exit_code == 0)) {
      if (failures++ == 0) first_failure = r.status() + ": " + r.err;
      continue;
    }
    RunResult v = verify_intact(c);
    EXPECT_EQ(v.exit_code, 0) << "attempt " << i << ": " << v.status() << "\n" << v.err;
    expect_running_untraced(t.pid());
  }
  EXPECT_EQ(failures, 0) << "of 60 dumps; the first: " << first_failure;
}

// Signals arriving while the dump runs syscalls inside a thread (here a
// POSIX timer's, every 200 us) must neither fail the dump nor be lost. A
// suppressed signal used to be re-sent at once, was pending again at the
// next resume and stopped the thread again: "keeps stopping during an
// injected syscall".
TEST(DumpState, SignalsArrivingDuringTheDump) {
  Target t({DUMP_TIMER_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  unsigned long addr = std::strtoul(t.value("counter").c_str(), nullptr, 16);
  ASSERT_NE(addr, 0u);
  TempDir tmp;
  for (int i = 0; i < 20; i++) {
    SCOPED_TRACE("dump " + std::to_string(i));
    std::string c = tmp.file("timer" + std::to_string(i % 2) + ".core");
    expect_success(dump(t.pid(), c));
    if (HasFatalFailure()) return;
  }
  expect_running_untraced(t.pid());
  unsigned long after;
  ASSERT_TRUE(read_remote_u64(t.pid(), addr, &after));
  EXPECT_TRUE(counter_advances(t.pid(), addr, after)) << "the timer's signals stopped arriving";
}

// `-o -` writes the image to a pipe (run() gives imgtool a pipe as stdout).
TEST(DumpStdout, StreamsImageThroughAPipe) {
  Target t({DUMP_SLEEPER_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  RunResult r = dump(t.pid(), "-");
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_EQ(r.err, "");
  ASSERT_GE(r.out.size(), 64u);
  EXPECT_EQ(r.out.compare(0, 4, "\x7f" "ELF"), 0);
  std::string f = tmp.file("streamed.core");
  ASSERT_TRUE(write_file(f, r.out));
  RunResult v = verify_intact(f);
  EXPECT_EQ(v.exit_code, 0) << v.status() << "\n" << v.err;
  // Nothing else appeared in the current directory's sense: only our file.
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{"streamed.core"});
  expect_running_untraced(t.pid());
}

// The same through a shell pipeline into cat, as a user would.
TEST(DumpStdout, ShellPipelineIntoCat) {
  Target t({DUMP_SLEEPER_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  std::string f = tmp.file("piped.core"), rc = tmp.file("rc");
  // The pipeline's status is cat's; imgtool's is saved to a file.
  RunResult r = test::run({"/bin/sh", "-c", "{ \"$0\" dump --pid \"$1\" -o -; echo $? > \"$3\"; } | cat > \"$2\"",
                           imgtool(), std::to_string(t.pid()), f, rc},
                          120);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_EQ(read_file(rc), "0\n") << r.err;
  EXPECT_EQ(r.err, "");
  RunResult v = verify_intact(f);
  EXPECT_EQ(v.exit_code, 0) << v.status() << "\n" << v.err;
  expect_running_untraced(t.pid());
}

// --stats: one line on stderr with the frozen time (no timing asserted:
// only that the numbers are there and agree with each other and the file).
TEST(DumpStats, ReportsFrozenTimeOnStderr) {
  Target t({DUMP_SLEEPER_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  std::string c = tmp.file("img.core");
  RunResult r = dump(t.pid(), c, {"--stats"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_EQ(r.out, "");
  double frozen = -1, total = -1;
  unsigned long long image = 0, memory = 0;
  unsigned trackers = 0;
  int used = 0;
  ASSERT_EQ(std::sscanf(r.err.c_str(),
                        "dump stats: frozen %lf s, total %lf s, image %llu bytes, memory %llu bytes, trackers armed "
                        "%u\n%n",
                        &frozen, &total, &image, &memory, &trackers, &used),
            5)
      << r.err;
  // The tracker was made before the freeze, in a stop of its own (not
  // counted in "frozen"), and the freeze found it (DECISIONS 260).
  unsigned prearmed = 0, kept = 0;
  double stopped = -1;
  int more = 0;
  ASSERT_EQ(std::sscanf(r.err.c_str() + used, ", armed before the freeze %u (kept %u) in %lf s%n", &prearmed, &kept,
                        &stopped, &more),
            3)
      << r.err;
  EXPECT_EQ(prearmed, 1u);
  EXPECT_EQ(kept, 1u);
  EXPECT_GT(stopped, 0.0);
  EXPECT_LE(stopped, total);
  used += more;
  // Then how it froze: for the whole dump, the sleeper having less than
  // the 8 MiB from which snapshot mode is the default (DECISIONS 134).
  EXPECT_EQ(r.err.substr(used), ", freeze full (under 8 MiB to store)\n") << "one line only:\n" << r.err;
  EXPECT_GT(frozen, 0.0);
  EXPECT_LE(frozen, total);
  EXPECT_EQ(image, read_file(c).size());
  EXPECT_GT(memory, 0u);
  EXPECT_LT(memory, image);
  EXPECT_EQ(trackers, 1u) << "a dump that lets the process run on arms a dirty tracker (DECISIONS 168)";
  expect_running_untraced(t.pid());
  // With -o - the image alone goes to stdout, the line to stderr.
  RunResult s = dump(t.pid(), "-", {"--stats"});
  ASSERT_TRUE(s.exited && s.exit_code == 0) << s.status() << "\n" << s.err;
  EXPECT_EQ(s.out.compare(0, 4, "\x7f" "ELF"), 0);
  EXPECT_EQ(s.err.rfind("dump stats: frozen ", 0), 0u) << s.err;
}

TEST(DumpKill, ProcessGoneAfterDump) {
  Target t({DUMP_SLEEPER_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  std::string c = tmp.file("killed.core");
  expect_success(dump(t.pid(), c, {"--kill"}));
  int status = 0;
  ASSERT_TRUE(t.wait_exit(&status, 10)) << "the target is still alive after --kill";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status 0x" << std::hex << status;
  RunResult v = verify(c);
  EXPECT_EQ(v.exit_code, 0) << v.status() << "\n" << v.err;
}

TEST(DumpKill, KillsAStoppedMultiThreadedProcess) {
  Target t({DUMP_TLS_THREADS_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  ASSERT_TRUE(t.stop());
  TempDir tmp;
  std::string c = tmp.file("killed.core");
  expect_success(dump(t.pid(), c, {"--kill"}));
  // dump --kill returns once every thread has exited (decision 83): a
  // zombie at most, waiting for its parent.
  char state = proc_state(t.pid());
  EXPECT_TRUE(state == 0 || state == 'Z') << "state '" << state << "' right after dump --kill";
  int status = 0;
  ASSERT_TRUE(t.wait_exit(&status, 10)) << "the target is still alive after --kill";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status 0x" << std::hex << status;
  RunResult v = verify(c);
  EXPECT_EQ(v.exit_code, 0) << v.status() << "\n" << v.err;
}

}  // namespace
}  // namespace ckpt::dumptest
