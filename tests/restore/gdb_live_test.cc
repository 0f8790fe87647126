// `imgtool restore FILE --gdb`: live debugging from an image, gdb driven in
// batch mode (tests/programs/restore_gdb_live.c).
#include <regex>
#include <set>
#include <sstream>
#include <sys/wait.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class RestoreGdb : public RestoreTest {
 protected:
  // Starts the program, dumps it with --kill and creates the go file, so
  // that a restored copy runs to its end once gdb lets it.
  void prepare() {
    ASSERT_NO_FATAL_FAILURE(start(RESTORE_GDB_LIVE_PATH));
    ASSERT_NO_FATAL_FAILURE(dump_kill());
    go();
  }
  // `imgtool restore IMAGE --gdb -- -batch -ex C...`
  RunResult live(const std::vector<std::string> &commands) {
    std::vector<std::string> argv = {imgtool(), "restore", image_path(), "--gdb", "--", "-batch"};
    for (const std::string &c : commands) argv.insert(argv.end(), {"-ex", c});
    return test::run(argv, 120);
  }
  static void expect_no_stray_stop(const RunResult &r) {
    EXPECT_EQ(r.out.find("SIGSTOP"), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find("SIGSTOP"), std::string::npos) << r.err;
  }
  // The restored program (our child: we are the subreaper), left by gdb,
  // runs on to its clean exit.
  void expect_program_exits_0() {
    int status = 0;
    ASSERT_EQ(waitpid(pid_, &status, 0), pid_);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << log();
  }
};

// Per thread (by LWP), the function names of its backtrace.
std::set<std::string> backtraces(const std::string &gdb_out) {
  std::set<std::string> out;
  std::string current;
  static const std::regex thread_re(R"(^Thread \d+ \((?:Thread 0x[0-9a-f]+ \()?LWP (\d+)\))");
  static const std::regex frame_re(R"(^#(\d+) +(?:0x[0-9a-f]+ in )?([A-Za-z_][A-Za-z0-9_]*) )");
  for (const std::string &line : split_lines(gdb_out)) {
    std::smatch m;
    if (std::regex_search(line, m, thread_re)) {
      if (!current.empty()) out.insert(current);
      current = "lwp " + m[1].str() + ":";
    } else if (std::regex_search(line, m, frame_re) && !current.empty()) {
      current += " " + m[2].str();
    }
  }
  if (!current.empty()) out.insert(current);
  return out;
}

// gdb's output without the "[Thread ... exited]" and "[New process N]"
// lines, whose order follows the kernel's scheduling of the exits.
std::string without_exit_reports(const std::string &gdb_out) {
  std::string out;
  for (const std::string &line : split_lines(gdb_out))
    if (!(line.rfind("[Thread ", 0) == 0 && line.find(" exited]") != std::string::npos) &&
        line.rfind("[New process ", 0) != 0)
      out += line + "\n";
  return out;
}

TEST_F(RestoreGdb, ShowsWhatTheImageShows) {
  ASSERT_NO_FATAL_FAILURE(prepare());
  std::vector<std::string> look = {"thread apply all bt", "print watched", "info threads"};
  std::vector<std::string> core_argv = {imgtool(), "gdb", image_path(), "--", "-batch"};
  for (const std::string &c : look) core_argv.insert(core_argv.end(), {"-ex", c});
  RunResult core = test::run(core_argv, 120);
  ASSERT_TRUE(core.exited && core.exit_code == 0) << core.status() << core.err;
  RunResult live_run = live(look);
  ASSERT_TRUE(live_run.exited) << live_run.status();
  EXPECT_EQ(live_run.exit_code, 0) << live_run.err;
  std::set<std::string> want = backtraces(core.out), got = backtraces(live_run.out);
  EXPECT_EQ(want.size(), 3u) << core.out;
  EXPECT_EQ(got, want) << "live:\n" << live_run.out << "\nimage:\n" << core.out;
  EXPECT_NE(live_run.out.find("$1 = 7"), std::string::npos) << live_run.out;
  EXPECT_NE(live_run.out.find("\"reader\""), std::string::npos) << live_run.out;
  EXPECT_NE(live_run.out.find("\"sleeper\""), std::string::npos) << live_run.out;
  expect_no_stray_stop(live_run);
  // The end of -batch detached: the program runs on, to its clean exit.
  ASSERT_NO_FATAL_FAILURE(expect_program_exits_0());
}

TEST_F(RestoreGdb, BreakpointWatchpointAndNormalExit) {
  ASSERT_NO_FATAL_FAILURE(prepare());
  // This VM does not deliver x86 debug-register traps (a hardware
  // watchpoint never fires here, even in a plain `gdb -ex run`): the
  // watchpoint is gdb's software one, deleted once it has fired so that the
  // rest runs at full speed.
  std::vector<std::string> session = {"break after_checkpoint", "continue", "set can-use-hw-watchpoints 0",
                                      "watch watched", "continue", "delete", "continue"};
  RunResult r = live(session);
  ASSERT_TRUE(r.exited) << r.status();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Breakpoint 1, after_checkpoint"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("atchpoint 2: watched"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Old value = 7"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("New value = 42"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exited normally]"), std::string::npos) << "the program's own checks failed:\n"
                                                                 << r.out << log();
  EXPECT_EQ(log().find("FAIL"), std::string::npos) << log();
  expect_no_stray_stop(r);
  // It exited under gdb; imgtool left it to us (the subreaper) to reap,
  // and its pid is free for the next restore once we have.
  int status = 0;
  ASSERT_EQ(waitpid(pid_, &status, 0), pid_);
  // The same image, debugged again: the same session (but for the order
  // in which gdb reports the threads' exits).
  RunResult again = live(session);
  EXPECT_EQ(without_exit_reports(again.out), without_exit_reports(r.out));
}

// `ckpt restore-here` in gdb on the image: the same live session without
// leaving gdb (breakpoint, software watchpoint, normal exit).
TEST_F(RestoreGdb, RestoreHereFromTheImageSession) {
  ASSERT_NO_FATAL_FAILURE(prepare());
  std::vector<std::string> argv = {imgtool(), "gdb", image_path(), RESTORE_GDB_LIVE_PATH, "--", "-batch",
                                   "-ex", "info threads", "-ex", "ckpt restore-here", "-ex", "break after_checkpoint",
                                   "-ex", "continue", "-ex", "set can-use-hw-watchpoints 0", "-ex", "watch watched",
                                   "-ex", "continue", "-ex", "delete", "-ex", "continue"};
  RunResult r = test::run(argv, 120);
  ASSERT_TRUE(r.exited) << r.status();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Breakpoint 1, after_checkpoint"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("Old value = 7"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("New value = 42"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("exited normally]"), std::string::npos) << "the program's own checks failed:\n"
                                                                 << r.out << r.err << log();
  EXPECT_EQ(log().find("FAIL"), std::string::npos) << log();
  expect_no_stray_stop(r);
}

// `restore --leave-stopped --detach`: every thread stopped before its
// first instruction, and the program runs to its end after SIGCONT.
TEST_F(RestoreGdb, LeaveStoppedHoldsItUntilContinued) {
  ASSERT_NO_FATAL_FAILURE(prepare());
  std::string pidfile = tmp_.file("pid");
  RunResult r = test::run({imgtool(), "restore", image_path(), "--detach", "--leave-stopped", "--pidfile", pidfile}, 120);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << r.err;
  pid_t pid = std::atoi(read_file(pidfile).c_str());
  ASSERT_EQ(pid, pid_);
  // Each thread takes the SIGSTOP queued before the detach on its way back
  // to user mode (no instruction of the program runs first): 'T' soon.
  EXPECT_TRUE(wait_until([&] { return test::all_threads_in_state(pid, 'T'); }, 10))
      << "threads: " << test::thread_states(pid);
  // In a group stop with no tracer left, only SIGCONT runs it again: there
  // is nothing to wait for. Had it run, it would have found the go file
  // and reported PASS.
  for (pid_t tid : test::task_tids(pid)) EXPECT_EQ(test::tracer_pid(tid), 0) << "tid " << tid;
  EXPECT_EQ(log().find("PASS"), std::string::npos) << "it ran before SIGCONT:\n" << log();
  ASSERT_EQ(kill(pid, SIGCONT), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);  // we are the subreaper: it is our child
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << log();
  EXPECT_EQ(log().find("FAIL"), std::string::npos) << log();
}

TEST_F(RestoreGdb, ContinueRightAfterAttachRunsToTheEnd) {
  ASSERT_NO_FATAL_FAILURE(prepare());
  RunResult r = live({"continue"});
  ASSERT_TRUE(r.exited) << r.status();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("exited normally]"), std::string::npos) << r.out << log();
  expect_no_stray_stop(r);
}

TEST_F(RestoreGdb, DetachLeavesItRunning) {
  ASSERT_NO_FATAL_FAILURE(prepare());
  RunResult r = live({"info threads", "detach"});
  ASSERT_TRUE(r.exited) << r.status();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  expect_no_stray_stop(r);
  // We are the subreaper: the detached program is our child now.
  ASSERT_NO_FATAL_FAILURE(expect_program_exits_0());
}

// Restored under gdb and detached, the program equals the dumped one in its
// whole /proc state: gdb's attach, `ckpt settle` and detach leave no trace.
TEST_F(RestoreGdb, WholeStateAfterDetach) {
  compare_state_ = true;
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_GDB_LIVE_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  RunResult r = live({"detach"});
  ASSERT_TRUE(r.exited) << r.status();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ASSERT_NO_FATAL_FAILURE(expect_state_as_before());
  go();
  ASSERT_NO_FATAL_FAILURE(expect_program_exits_0());
}

// A tree: gdb holds the root; the others run on once it has attached, so
// the root's waits for its children end and it exits with its own checks
// passed.
TEST_F(RestoreGdb, TreeRootRunsToTheEnd) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  go();
  RunResult r = live({"info inferiors", "continue"});
  ASSERT_TRUE(r.exited) << r.status();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("exited normally]"), std::string::npos) << r.out << log();
  expect_no_stray_stop(r);
}

// --gdb-pid N: gdb on another process of the tree; after gdb's detach the
// whole tree finishes normally.
TEST_F(RestoreGdb, TreeChildByPid) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_PATH));
  std::vector<std::string> pids;
  std::istringstream words(program_->value("pids"));
  for (std::string w; words >> w;) pids.push_back(w);
  ASSERT_GE(pids.size(), 2u);
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  go();
  RunResult r = test::run({imgtool(), "restore", image_path(), "--gdb", "--gdb-pid", pids[1], "--", "-batch", "-ex",
                           "info inferiors", "-ex", "print (int)getpid()"},
                          120);
  ASSERT_TRUE(r.exited) << r.status();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("process " + pids[1]), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("= " + pids[1]), std::string::npos) << r.out;
  expect_no_stray_stop(r);
  ASSERT_NO_FATAL_FAILURE(expect_program_exits_0());
}

TEST_F(RestoreGdb, RefusesPidns) {
  ASSERT_NO_FATAL_FAILURE(prepare());
  expect_one_line_failure(restore(image_path(), {"--gdb", "--pidns"}), "not supported");
}

TEST_F(RestoreGdb, RefusesStandardInput) {
  // gdb takes its commands from standard input; the image cannot come that way.
  ASSERT_NO_FATAL_FAILURE(prepare());
  expect_one_line_failure(restore("-", {"--gdb"}), "standard input ('-') is gdb's");
}

}  // namespace
}  // namespace ckpt::restoretest
