// The state comparison itself (process_state.h): it must see a difference
// where there is one, name the field, and see none in an idle process, so a
// restore test cannot pass by comparing nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "process_state.h"
#include "spawned_process.h"

namespace ckpt::test {
namespace {

// A shell that prints "ready" and becomes `sleep SECONDS`: stdin and stdout
// are pipes to us, stderr /dev/null.
std::unique_ptr<SpawnedProcess> sleeper(const std::string &seconds) {
  SpawnedProcess::Options o;
  return std::make_unique<SpawnedProcess>(
      std::vector<std::string>{"/bin/sh", "-c", "echo ready; exec sleep \"$0\"", seconds}, o);
}

std::string joined(const std::vector<std::string> &lines) {
  std::string out;
  for (const std::string &l : lines) out += "  " + l + "\n";
  return out;
}

bool has_prefix(const std::vector<std::string> &lines, const std::string &prefix) {
  return std::any_of(lines.begin(), lines.end(), [&](const std::string &l) { return l.rfind(prefix, 0) == 0; });
}

TEST(ProcessState, CapturesEveryKindOfField) {
  auto p = sleeper("1000");
  ASSERT_TRUE(p->ready()) << p->error();
  ProcessState s = capture_idle_state(p->pid());
  ASSERT_EQ(s.error, "");
  std::string pid = std::to_string(p->pid());
  for (const char *key : {"status.CapEff", "status.SigIgn", "status.NoNewPrivs", "status.Seccomp", "stat.policy",
                          "stat.nice", "limits.Max open files", "personality", "oom_score_adj", "cwd", "exe",
                          "cmdline", "environ", "timerslack_ns", "ns.pid", "fd.0.link", "fd.0.flags", "fd.0.pos"})
    EXPECT_TRUE(s.fields.count(key)) << key;
  EXPECT_EQ(s.fields["status.Pid"], pid);
  EXPECT_EQ(s.fields["tids"], pid);
  EXPECT_TRUE(s.fields.count("task." + pid + ".status.SigBlk"));
  auto maps = std::count_if(s.fields.begin(), s.fields.end(), [](auto &f) { return f.first.rfind("maps.", 0) == 0; });
  EXPECT_GE(maps, 5) << "a dynamically linked sleep has more mappings";
  // Pipes are re-created objects: their inodes are shown by first sight.
  EXPECT_EQ(s.fields["fd.0.link"], "pipe:[#1]");
  EXPECT_EQ(s.fields["fd.1.link"], "pipe:[#2]");
}

TEST(ProcessState, TheSameIdleProcessTwiceHasNoDifferences) {
  auto p = sleeper("1000");
  ASSERT_TRUE(p->ready()) << p->error();
  ProcessState a = capture_idle_state(p->pid());
  ASSERT_EQ(a.error, "");
  ProcessState b = capture_state(p->pid());
  EXPECT_EQ(diff_states(a, b), std::vector<std::string>{});
}

TEST(ProcessState, TwoProcessesDiffer) {
  auto p = sleeper("1000"), q = sleeper("1001");
  ASSERT_TRUE(p->ready() && q->ready()) << p->error() << q->error();
  ProcessState a = capture_idle_state(p->pid()), b = capture_idle_state(q->pid());
  std::vector<std::string> d = diff_states(a, b);
  std::string pid_line = "status.Pid: " + std::to_string(p->pid()) + " -> " + std::to_string(q->pid());
  EXPECT_NE(std::find(d.begin(), d.end(), pid_line), d.end()) << joined(d);
  EXPECT_NE(std::find(d.begin(), d.end(), "cmdline: sleep\\01000\\0 -> sleep\\01001\\0"), d.end()) << joined(d);
  // The same kind of fds (two pipes, /dev/null) in the same places: their
  // different inode numbers are not a difference.
  EXPECT_FALSE(has_prefix(d, "fd.")) << joined(d);
}

// One change made from outside is reported as exactly that field.
TEST(ProcessState, AChangedFieldIsReportedByName) {
  auto p = sleeper("1000");
  ASSERT_TRUE(p->ready()) << p->error();
  pid_t pid = p->pid();
  ProcessState before = capture_idle_state(pid);
  ASSERT_EQ(before.error, "");
  rlimit nofile{};
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, nullptr, &nofile), 0);
  rlimit lower{nofile.rlim_cur - 1, nofile.rlim_max};
  ASSERT_EQ(prlimit(pid, RLIMIT_NOFILE, &lower, nullptr), 0);
  ProcessState after = capture_idle_state(pid);
  std::vector<std::string> d = diff_states(before, after);
  ASSERT_EQ(d.size(), 1u) << joined(d);
  EXPECT_EQ(d[0].rfind("limits.Max open files: " + std::to_string(nofile.rlim_cur) + " ", 0), 0u) << d[0];
  EXPECT_NE(d[0].find(" -> " + std::to_string(lower.rlim_cur) + " "), std::string::npos) << d[0];
}

TEST(ProcessState, AGoneProcessIsAnErrorAndADifference) {
  pid_t pid;
  {
    auto p = sleeper("1000");
    ASSERT_TRUE(p->ready()) << p->error();
    pid = p->pid();
  }  // killed and reaped
  ProcessState gone = capture_state(pid);
  EXPECT_NE(gone.error, "");
  ProcessState none;
  EXPECT_FALSE(diff_states(none, gone).empty());
}

// A thread with glibc's own every-signal mask (signals 32 and 33 too, as
// pthread_create leaves a new thread until it runs) is inside glibc, not
// idle, however still its /proc lines are: the capture waits until it
// has its own mask again. Here a child holds that mask (a raw
// rt_sigprocmask, as glibc sets it) for 500 ms, then blocks only SIGUSR1.
// Without the wait the capture returns the all-blocked state after two
// captures (tens of ms); a load that stalled both past 500 ms would let
// it pass without the wait, never fail with it.
TEST(ProcessState, AThreadInsideGlibcWithEverySignalBlockedIsNotIdle) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    uint64_t all = ~0ull, own = 1ull << (SIGUSR1 - 1);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, nullptr, 8);
    (void)!write(ready[1], "r", 1);
    timespec hold{0, 500 * 1000 * 1000};
    syscall(SYS_nanosleep, &hold, nullptr);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &own, nullptr, 8);
    for (;;) pause();
  }
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  ProcessState s = capture_idle_state(child);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_EQ(s.error, "");
  EXPECT_EQ(s.fields["task." + std::to_string(child) + ".status.SigBlk"], "0000000000000200");
}

}  // namespace
}  // namespace ckpt::test
