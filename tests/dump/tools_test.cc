// Images of targets in different states open in imgtool verify, gdb,
// eu-stack and lldb with every thread.
#include <gtest/gtest.h>

#include <map>
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

// The functions of the program itself (not of libc) in each thread's
// backtrace, innermost first, from gdb's `thread apply all bt`: frames
// "#N  [0x... in] FUNC (...) at .../tests/programs/FILE:LINE" under
// "Thread N (Thread 0x... (LWP TID)):".
std::map<pid_t, std::vector<std::string>> gdb_program_frames(const std::string &out) {
  std::map<pid_t, std::vector<std::string>> frames;
  pid_t tid = 0;
  for (const std::string &line : split_lines(out)) {
    size_t lwp = line.find("(LWP ");
    if (line.rfind("Thread ", 0) == 0 && lwp != std::string::npos) {
      tid = std::atoi(line.c_str() + lwp + 5);
      continue;
    }
    if (line.rfind("#", 0) != 0 || line.find("/tests/programs/") == std::string::npos) continue;
    size_t in = line.find(" in ");
    size_t name_at = in != std::string::npos ? in + 4 : line.find_first_not_of(' ', line.find(' '));
    frames[tid].push_back(line.substr(name_at, line.find(' ', name_at) - name_at));
  }
  return frames;
}

// The same from lldb's `thread list` ("thread #N: tid = TID, ...") and
// `bt all` ("thread #N, ..." then "frame #K: 0x... MODULE`FUNC at ..." or
// "MODULE`FUNC(args) at ..."), for frames in the program's module.
std::map<pid_t, std::vector<std::string>> lldb_program_frames(const std::string &out, const std::string &program) {
  std::map<int, pid_t> tid_of;
  std::map<pid_t, std::vector<std::string>> frames;
  std::string module = program.substr(program.rfind('/') + 1) + "`";
  pid_t tid = 0;
  for (std::string line : split_lines(out)) {
    line.erase(0, line.find_first_not_of(" *"));
    if (line.rfind("thread #", 0) == 0) {
      int index = std::atoi(line.c_str() + 8);
      size_t t = line.find("tid = ");
      if (t != std::string::npos) tid_of[index] = std::atoi(line.c_str() + t + 6);
      tid = tid_of.count(index) ? tid_of[index] : 0;
      continue;
    }
    if (line.rfind("frame #", 0) != 0) continue;
    // "frame #K: 0xADDR MODULE`FUNC...": the word after the address (a
    // libc frame's arguments may name the program's functions too).
    size_t addr = line.find(": 0x");
    size_t word = addr == std::string::npos ? addr : line.find(' ', addr + 2);
    if (word == std::string::npos || line.compare(word + 1, module.size(), module) != 0) continue;
    size_t name_at = word + 1 + module.size();
    std::vector<std::string> &list = frames[tid];
    // gdb stops at main (backtrace past-main is off); lldb goes on to _start.
    if (!list.empty() && list.back() == "main") continue;
    list.push_back(line.substr(name_at, line.find_first_of(" (+", name_at) - name_at));
  }
  return frames;
}

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
    // the threads and backtraces are checked. lldb must list every thread
    // and, for each, the same functions of the program as gdb's backtrace
    // (what differs from gdb otherwise: docs/GDB.md "lldb").
    SCOPED_TRACE("lldb");
    RunResult l = run_merged({"lldb", "--batch", "-c", c, k.program, "-o", "thread list", "-o", "bt all"});
    ASSERT_TRUE(l.exited) << l.status() << "\n" << l.out;
    EXPECT_NE(l.out.find("Core file '" + c + "' (x86_64) was loaded"), std::string::npos) << l.out;
    for (pid_t tid : tids) {
      EXPECT_NE(l.out.find("tid = " + std::to_string(tid) + ","), std::string::npos) << "tid " << tid << "\n" << l.out;
    }
    RunResult g = run_merged({"gdb", "-batch", "-nx", "-ex", "thread apply all bt", k.program, c});
    ASSERT_TRUE(g.exited && g.exit_code == 0) << g.status() << "\n" << g.out;
    std::map<pid_t, std::vector<std::string>> in_gdb = gdb_program_frames(g.out);
    std::map<pid_t, std::vector<std::string>> in_lldb = lldb_program_frames(l.out, k.program);
    for (pid_t tid : tids) {
      SCOPED_TRACE("tid " + std::to_string(tid));
      EXPECT_FALSE(in_gdb[tid].empty()) << g.out;
      EXPECT_EQ(in_lldb[tid], in_gdb[tid]) << "lldb:\n" << l.out << "\ngdb:\n" << g.out;
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
