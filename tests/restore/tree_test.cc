// Restoring a process tree: every process with its pid, parent, session
// and process group, zombies with their statuses, pipes between processes
// with their bytes, one shared file offset, shared anonymous memory
// (tests/programs/restore_tree.c checks all of it from inside).
#include <gtest/gtest.h>

#include <csignal>
#include <dirent.h>
#include <map>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include "known_state_differences.h"
#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

// Every restore_expect() of a --kill dump but --pidns ones restores
// detached and compares each live process's whole state with its state
// before the dump (compare_tree_), then lets the tree run its own checks.
class RestoreTree : public ReportingRestoreTest {
 protected:
  RestoreTree() { compare_tree_ = true; }
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
  // And with --lazy: one lazy-pages helper per process.
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--lazy"}));
  EXPECT_EQ(report(), "PASS\nPASS\nPASS\n");
}

// A pid file that opens but cannot be written (/dev/full: ftruncate fails)
// ends the whole tree before any of it ran, not the root alone after the
// handover (DECISIONS 274; a review found the other processes of a tree
// left running, orphaned). Without the go file a process that ran would
// wait for it, alive.
TEST_F(RestoreTree, APidFileThatCannotBeWrittenEndsTheWholeTree) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_PATH));
  std::vector<pid_t> live = live_descendants(pid_);
  live.insert(live.begin(), pid_);
  ASSERT_EQ(live.size(), 7u) << "R, A, G, B, C, D, T";
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  for (std::vector<std::string> form : {std::vector<std::string>{"--detach"}, std::vector<std::string>{}}) {
    SCOPED_TRACE(form.empty() ? "foreground" : "--detach");
    std::vector<std::string> args = form;
    args.insert(args.end(), {"--pidfile", "/dev/full"});
    RunResult r = restore(image_path(), args);
    expect_one_line_failure(r, "cannot write the pid file /dev/full");
    for (pid_t p : live)
      EXPECT_TRUE(wait_until([&] { return !pid_exists(p); }, 10)) << "pid " << p << " left after the failed restore";
  }
  EXPECT_EQ(report(), "") << "a process of the tree ran";
}

// Every live process of the tree, idle before the dump and idle again after
// a --detach restore, compares equal field by field (tests/support), save
// the differences known_state_differences.cc lists.
TEST_F(RestoreTree, EveryProcessStateComparesEqual) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_PATH));
  std::vector<pid_t> live = live_descendants(pid_);
  live.insert(live.begin(), pid_);
  ASSERT_EQ(live.size(), 7u) << "R, A, G, B, C, D, T";
  ASSERT_NO_FATAL_FAILURE(detach_restore_and_compare(live));
  EXPECT_EQ(read_file(restored_pidfile()), std::to_string(pid_) + "\n");
  ASSERT_NO_FATAL_FAILURE(go());
  int st = 0;
  ASSERT_TRUE(test::wait_child_exit(pid_, &st, 60)) << report();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st << "\n" << report();
  EXPECT_EQ(report(), "PASS\n");
}

// A process of the tree fails after others exist (here: its deleted
// executable cannot be recreated, its name being taken since the dump, which
// only that child finds out): one line naming the process, and every process
// already created is gone.
// A deleted /dev/shm object mapped shared by a parent and its child (a
// POSIX semaphore's storage, as python's multiprocessing locks use) is one
// object again after restore, not a copy per process.
TEST_F(RestoreTree, UnlinkedShmObjectStaysSharedBetweenProcesses) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SHM_TREE_PATH));
  pass_file_ = log_path();  // this program reports on stderr
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// The same object where one process also keeps its fd open and the other
// only maps it: the fd and both mappings are one file after restore, not
// the fd's file in one process and a copy in the other.
TEST_F(RestoreTree, UnlinkedShmObjectHeldByTheParentsFdStaysShared) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SHM_TREE_PATH, {"parent-fd"}));
  pass_file_ = log_path();
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(RestoreTree, UnlinkedShmObjectHeldByTheChildsFdStaysShared) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SHM_TREE_PATH, {"child-fd"}));
  pass_file_ = log_path();
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// A pipe made by the parent and inherited by its child, where the child
// also opened the read end again through /proc with O_NONBLOCK: each open
// file keeps its own status flags (issue 17).
TEST_F(RestoreTree, InheritedPipeKeepsStatusFlagsPerOpenFile) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_PIPE_FLAGS_PATH));
  pass_file_ = log_path();
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(RestoreTree, AFailureInAChildLeavesNothingRunning) {
  std::string exe = tmp_.file("mysleep");
  Program::Options o;
  o.log = log_path();
  o.cwd = dir();
  ASSERT_NO_FATAL_FAILURE(start_argv({"/bin/bash", "-c",
                                      "cp /bin/sleep \"$0\" || exit 1; \"$0\" 1000 & child=$!; "
                                      "until [ \"$(readlink /proc/$child/exe)\" = \"$0\" ]; do :; done; "
                                      "rm -f \"$0\"; echo child $child; echo ready; wait",
                                      exe},
                                     o));
  pid_t child = std::stoi(program_->value("child"));
  ASSERT_TRUE(wait_until([&] { return access(exe.c_str(), F_OK) != 0; }, 10));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_TRUE(write_file(exe, "another file\n"));
  RunResult r = restore(image_path());
  expect_one_line_failure(r, "process " + std::to_string(child) +
                                 ": cannot recreate the deleted executable " + exe + ": another file has its name now");
  EXPECT_FALSE(pid_exists(pid_)) << "the root is left (state " << proc_state(pid_) << ")";
  EXPECT_FALSE(pid_exists(child)) << "the child is left (state " << proc_state(child) << ")";
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
