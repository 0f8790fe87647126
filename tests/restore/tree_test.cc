// Restoring a process tree: every process with its pid, parent, session
// and process group, zombies with their statuses, pipes between processes
// with their bytes, one shared file offset, shared anonymous memory
// (tests/programs/restore_tree.c checks all of it from inside).
#include <gtest/gtest.h>

#include <csignal>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class RestoreTree : public RestoreTest {
 protected:
  void SetUp() override {
    RestoreTest::SetUp();
    pass_file_ = tmp_.file("report.txt");
  }
  std::string report() const { return read_file(tmp_.file("report.txt")); }
  // The tree's pids from the program's "pids" line.
  std::vector<pid_t> tree_pids() const {
    std::vector<pid_t> out;
    std::istringstream in(program_->value("pids"));
    for (pid_t p; in >> p;) out.push_back(p);
    return out;
  }
};

TEST_F(RestoreTree, ComesBackWhole) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_PATH));
  std::vector<pid_t> pids = tree_pids();
  ASSERT_EQ(pids.size(), 8u) << program_->value("pids");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_EQ(report(), "PASS\n") << "the restored tree's report";
  // The same image again, in a new pid namespace.
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--pidns"}));
  EXPECT_EQ(report(), "PASS\nPASS\n");
}

// A pid of the tree (not the root's) is taken: one line naming it and its
// owner, and nothing is started.
TEST_F(RestoreTree, APidTakenStartsNothing) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_PATH));
  std::vector<pid_t> pids = tree_pids();
  ASSERT_EQ(pids.size(), 8u);
  RunResult d = dump(pid_, image_path());  // leave running
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  // The root goes; its children stay (ours now) and hold their pids.
  ASSERT_EQ(kill(pid_, SIGKILL), 0);
  int st = 0;
  ASSERT_TRUE(program_->wait_exit(&st, 10));
  RunResult r = restore(image_path());
  expect_one_line_failure(r, "pid " + std::to_string(pids[1]) + " is in use by another process (restore_tree)");
  EXPECT_FALSE(pid_exists(pid_)) << "the root was started";
  fail_on_leftovers_ = false;  // the original's children, killed in TearDown
}

}  // namespace
}  // namespace ckpt::restoretest
