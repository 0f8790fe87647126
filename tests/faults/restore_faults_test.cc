// imgtool restore killed before its point of no return (the release of the
// restored threads): no half-restored process survives, and the pids are
// free again, so the next restore of the same image works.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <sstream>
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

INSTANTIATE_TEST_SUITE_P(Points, RestoreFaults, ::testing::Values("restore-forked", "restore-before-handover"),
                         [](const auto &info) {
                           std::string n = info.param;
                           std::erase(n, '-');
                           return n;
                         });

}  // namespace
}  // namespace ckpt::faulttest
