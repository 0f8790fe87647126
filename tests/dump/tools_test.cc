// Images of targets in different states open in imgtool verify, gdb,
// eu-stack and lldb with every thread.
#include <gtest/gtest.h>

#include <sys/syscall.h>

#include "dump_common.h"

namespace ckpt::dumptest {
namespace {

struct Case {
  const char *name;
  const char *program;
  bool stopped;  // SIGSTOP before the dump
  long blocked_in = -1;  // wait until every thread is in this system call
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

class DumpTools : public ::testing::TestWithParam<Case> {};

bool has_line_with(const std::string &text, const std::string &needle) {
  for (const std::string &line : split_lines(text))
    if (test::lower(line).find(needle) != std::string::npos) return true;
  return false;
}

TEST_P(DumpTools, ImageOpensEverywhereWithAllThreads) {
  const Case &k = GetParam();
  Target t({k.program});
  ASSERT_TRUE(t.ready()) << t.error();
  if (k.blocked_in >= 0) {
    ASSERT_TRUE(wait_all_in_syscall(t.pid(), k.blocked_in));
  }
  if (k.stopped) {
    ASSERT_TRUE(t.stop());
  }
  std::vector<pid_t> tids = task_tids(t.pid());
  ASSERT_GE(tids.size(), 2u);
  TempDir tmp;
  std::string c = tmp.file(std::string(k.name) + ".core");
  expect_success(dump(t.pid(), c));
  // Threads must not have come or gone meanwhile (the targets' are fixed).
  ASSERT_EQ(task_tids(t.pid()), tids);
  if (k.stopped) {
    EXPECT_EQ(proc_state(t.pid()), 'T');
  }

  {
    SCOPED_TRACE("imgtool verify");
    RunResult v = verify_intact(c);
    EXPECT_TRUE(v.exited && v.exit_code == 0) << v.status() << "\n" << v.err;
  }
  {
    SCOPED_TRACE("gdb");
    RunResult g = run_merged({"gdb", "-batch", "-nx", "-ex", "info threads", k.program, c});
    ASSERT_TRUE(g.exited) << g.status();
    EXPECT_EQ(g.exit_code, 0) << g.out;
    for (pid_t tid : tids) {
      EXPECT_NE(g.out.find("(LWP " + std::to_string(tid) + ")"), std::string::npos) << "LWP " << tid << "\n" << g.out;
    }
    EXPECT_FALSE(has_line_with(g.out, "warning")) << g.out;
  }
  {
    SCOPED_TRACE("eu-stack");
    RunResult e = test::run({"eu-stack", "--core", c}, 120);
    EXPECT_TRUE(e.exited && e.exit_code == 0) << e.status() << "\n" << e.out << e.err;
    for (pid_t tid : tids) {
      EXPECT_NE(e.out.find("TID " + std::to_string(tid) + ":"), std::string::npos) << "TID " << tid << "\n" << e.out;
    }
  }
  {
    // Debian's lldb 14 prints Python tracebacks of its own (a broken
    // lldb.embedded_interpreter); they are unrelated to the image, so only
    // the thread list is checked. The same command lists a gcore's threads
    // on this machine.
    SCOPED_TRACE("lldb");
    RunResult l = run_merged({"lldb", "--batch", "-c", c, "-o", "thread list"});
    ASSERT_TRUE(l.exited) << l.status() << "\n" << l.out;
    EXPECT_NE(l.out.find("Core file '" + c + "' (x86_64) was loaded"), std::string::npos) << l.out;
    for (pid_t tid : tids) {
      EXPECT_NE(l.out.find("tid = " + std::to_string(tid) + ","), std::string::npos) << "tid " << tid << "\n" << l.out;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, DumpTools,
                         ::testing::Values(Case{"sleeping", DUMP_SLEEPER_PATH, false},
                                           Case{"computing", DUMP_COMPUTE_PATH, false},
                                           Case{"stopped", DUMP_SLEEPER_PATH, true},
                                           Case{"blocked", DUMP_BLOCKED_PATH, false, SYS_read}),
                         [](const ::testing::TestParamInfo<Case> &i) { return std::string(i.param.name); });

}  // namespace
}  // namespace ckpt::dumptest
