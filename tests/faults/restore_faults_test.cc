// imgtool restore killed before its point of no return (the release of the
// restored threads): no half-restored process survives, and the pids are
// free again, so the next restore of the same image works.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <sstream>
#include <cstdlib>
#include <sys/wait.h>
#include <unistd.h>

#include "faults_common.h"

namespace ckpt::faulttest {
namespace {

class RestoreFaults : public FaultTest, public ::testing::WithParamInterface<const char *> {
 protected:
  // Restores with the fault; imgtool must die there, and every pid of the
  // image be gone soon after (the children die with it: PR_SET_PDEATHSIG).
  void restore_killed_at(const std::string &point, const std::vector<pid_t> &pids) {
    ASSERT_NO_FATAL_FAILURE(go());
    RunResult r = run_with_fault(point, {imgtool(), "restore", image_path()});
    EXPECT_TRUE(!r.exited && r.term_signal == SIGKILL) << "the fault point was not reached: " << r.status() << "\n"
                                                       << r.err << log();
    // Orphans come to us (a subreaper): reap them while waiting.
    bool gone = restoretest::wait_until(
        [&] {
          while (waitpid(-1, nullptr, WNOHANG | __WALL) > 0) {
          }
          for (pid_t p : pids)
            if (restoretest::pid_exists(p)) return false;
          return true;
        },
        10);
    std::string left;
    for (pid_t p : pids)
      if (restoretest::pid_exists(p))
        left += " " + std::to_string(p) + "(" + std::string(1, restoretest::proc_state(p)) + ")";
    EXPECT_TRUE(gone) << "processes of the image left after imgtool died:" << left;
  }
};

TEST_P(RestoreFaults, SingleProcessKilledBeforeHandoverLeavesNothing) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_THREADS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_killed_at(GetParam(), {pid_}));
  // The pid is free: the image restores.
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_P(RestoreFaults, TreeKilledBeforeHandoverLeavesNothing) {
  pass_file_ = tmp_.file("report.txt");
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_PATH));
  std::vector<pid_t> pids;
  std::istringstream in(program_->value("pids"));
  for (pid_t p; in >> p;) pids.push_back(p);
  ASSERT_EQ(pids.size(), 8u);
  // The grandchild G is in the image but not in the program's list: a
  // zombie G (orphaned to us) still held its pid when the next restore came.
  for (pid_t p : tree_of(pid_))
    if (std::find(pids.begin(), pids.end(), p) == pids.end()) pids.push_back(p);
  ASSERT_EQ(pids.size(), 9u) << "R A B C D T Z1 Z2 and G";
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_killed_at(GetParam(), pids));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_EQ(test::read_text_file(pass_file_), "PASS\n");
}

// --lazy, the lazy-pages helper killed once it served half of the stored
// bytes, while the program reads its memory (a fault waits on it then).
// Closing the userfaultfd would let the program read zeros for every page
// not yet in (reader/src/lazy_guard.h): it must be killed instead, never
// finish with wrong memory. Its pid is free afterwards.
TEST_F(RestoreFaults, LazyHelperKilledMidwayKillsTheProgram) {
  pass_file_ = log_path();
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_BIGMEM_PATH, {"48"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = run_with_fault("restore-lazy-midway", {imgtool(), "restore", "--lazy", image_path()});
  ASSERT_TRUE(r.exited) << r.status() << "\n" << r.err;
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << "the program ran on after its pages could no longer be served\n"
                                        << r.err << log();
  EXPECT_EQ(log().find("FAIL"), std::string::npos) << log();
  bool gone = restoretest::wait_until(
      [&] {
        while (waitpid(-1, nullptr, WNOHANG | __WALL) > 0) {
        }
        return !restoretest::pid_exists(pid_);
      },
      10);
  EXPECT_TRUE(gone) << "the restored process is still there";
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--lazy"}));
}

// --lazy, a program that exits as soon as it runs (a warm start that
// answers and leaves): restore is held after the handover until the
// program has exited and the helper has ended with it (both zombies, our
// children), and only then tells the helper to begin. That was a write
// into a pipe nobody read any more: SIGPIPE killed imgtool (exit 141 for
// about one warm start in a hundred under load). Restore must report the
// program's own exit instead (DECISIONS 255).
TEST_F(RestoreFaults, LazyProgramGoneBeforeTheHelperIsToldToBeginIsReported) {
  pass_file_ = log_path();
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_BIGMEM_PATH, {"4"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());  // the restored program checks its memory and exits at once
  test::TempDir side;
  std::string wait = side.file("wait"), err = side.file("restore.err");
  setenv("CKPT_FAULT", "restore-lazy-before-go:wait", 1);
  setenv("CKPT_FAULT_WAIT", wait.c_str(), 1);
  pid_t restorer = spawn({imgtool(), "restore", "--lazy", image_path()}, err);
  unsetenv("CKPT_FAULT");
  unsetenv("CKPT_FAULT_WAIT");
  ASSERT_GT(restorer, 0);
  bool reached = restoretest::wait_until(
      [&] { return access((wait + ".restore-lazy-before-go").c_str(), F_OK) == 0; }, 60);
  EXPECT_TRUE(reached) << "restore never handed over: " << test::read_text_file(err);
  // Every child of imgtool (the restored process and the helper) has
  // exited; none is reaped before imgtool goes on.
  std::string children_file =
      "/proc/" + std::to_string(restorer) + "/task/" + std::to_string(restorer) + "/children";
  std::string seen;
  bool all_gone = reached && restoretest::wait_until(
                                 [&] {
                                   std::istringstream in(test::read_text_file(children_file));
                                   int n = 0;
                                   seen.clear();
                                   for (pid_t c; in >> c; n++) {
                                     char st = restoretest::proc_state(c);
                                     seen += " " + std::to_string(c) + "(" + std::string(1, st ? st : '-') + ")";
                                     if (st != 'Z') return false;
                                   }
                                   return n >= 2;
                                 },
                                 30);
  EXPECT_TRUE(all_gone) << "the program and the helper did not both end:" << seen << "\n" << log();
  ASSERT_TRUE(test::write_text_file(wait, ""));
  int status = 0;
  ASSERT_EQ(waitpid(restorer, &status, 0), restorer);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "imgtool restore: status 0x" << std::hex << status << std::dec
      << (WIFSIGNALED(status) ? " (killed by signal " + std::to_string(WTERMSIG(status)) + ")" : std::string())
      << "\n" << test::read_text_file(err);
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
  EXPECT_EQ(log().find("FAIL"), std::string::npos) << log();
}

INSTANTIATE_TEST_SUITE_P(Points, RestoreFaults, ::testing::Values("restore-forked", "restore-before-handover"),
                         [](const auto &info) {
                           std::string n = info.param;
                           std::erase(n, '-');
                           return n;
                         });

}  // namespace
}  // namespace ckpt::faulttest
