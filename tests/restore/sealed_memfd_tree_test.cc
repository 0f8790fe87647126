// A memfd sealed with F_SEAL_FUTURE_WRITE while a parent and its child both
// map it shared and writable (tests/programs/restore_sealed_memfd_tree.c):
// after the restore both still share the memory, the seals are as they
// were and still refuse a new writable mapping. The seal goes on once
// every process of the tree has mapped the memfd (decision 192's late
// seals; decision 204): a process that sealed it before its sibling had
// mapped it failed the sibling's restore with EPERM, which of the two came
// first being a race, so each image is restored several times. A memfd
// that no process holds an fd of, only maps, keeps its seals and name too
// (format minor 8: the VMA records carry them; decision 226). The first
// restore of each image is detached and every process's whole state is
// compared with its state before the dump (compare_tree_).
#include <gtest/gtest.h>

#include <sys/stat.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class SealedMemfdTree : public RestoreTest {
 protected:
  SealedMemfdTree() { compare_tree_ = true; }

  // Starts the program in `mode`, dumps it with --kill and restores the
  // image `eager` times in the foreground, then once with each of `extra`.
  void restore_repeatedly(const std::string &mode, int eager, const std::vector<std::string> &extra) {
    ASSERT_NO_FATAL_FAILURE(start(RESTORE_SEALED_MEMFD_TREE_PATH, {mode}));
    pass_file_ = log_path();  // the program reports on stderr
    ASSERT_NO_FATAL_FAILURE(dump_kill());
    for (int i = 0; i < eager; i++) {
      SCOPED_TRACE("eager restore " + std::to_string(i + 1));
      ASSERT_NO_FATAL_FAILURE(restore_expect(0));
      compare_tree_ = false;  // once is enough: the later ones are for the race
    }
    compare_tree_ = true;
    for (const std::string &option : extra) {
      SCOPED_TRACE("restore " + option);
      ASSERT_NO_FATAL_FAILURE(restore_expect(0, {option}));
    }
  }
};

// Both hold the fd (the child inherited it): each process's fd table has
// the memfd, so each process's restore used to add the seal.
TEST_F(SealedMemfdTree, BothHoldTheFd) { restore_repeatedly("both", 5, {"--lazy", "--pidns"}); }

// The parent holds the fd, the child only maps the memfd: the parent's
// seal came before the child's mapping whenever the parent ran first.
TEST_F(SealedMemfdTree, ParentHoldsTheFdChildOnlyMaps) { restore_repeatedly("parent-fd", 5, {"--lazy"}); }

// Neither holds the fd: the seals come from the VMA records, the object is
// made once for both (early seals after its fill) and imgtool adds the
// late ones through /proc/PID/map_files once both have mapped it.
TEST_F(SealedMemfdTree, NeitherHoldsTheFdBothOnlyMap) { restore_repeatedly("none", 3, {"--lazy", "--pidns"}); }

// One process that only maps it: its restorer adds the late seals through
// the fd it maps the object from.
TEST_F(SealedMemfdTree, OneProcessOnlyMaps) { restore_repeatedly("single", 1, {"--lazy"}); }

// F_SEAL_WRITE: added with the early seals, before the (read-only) mapping,
// which it would refuse to be added after (EBUSY on a mapping that may
// write).
TEST_F(SealedMemfdTree, WriteSealOfAMemfdOnlyMapped) { restore_repeatedly("single-write", 1, {"--lazy"}); }

// An unprivileged --pidns restore (a user namespace of its own) cannot add
// the late seals of a memfd no fd holds: imgtool reaches it through
// /proc/PID/map_files, which wants CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE
// in the initial user namespace. The restore refuses it in one line before
// anything is made (decision 239), instead of failing with EPERM once the
// tree exists. The program is a copy in the test's directory, which the
// restoring user (nobody) can read, as in RestoreErrors.NotPermitted.
TEST_F(SealedMemfdTree, UnprivilegedPidnsRestoreOfAMemfdOnlyMappedIsRefused) {
  std::string setpriv = test::find_tool({"setpriv"});
  ASSERT_FALSE(setpriv.empty()) << "no setpriv (scripts/setup.sh installs util-linux)";
  std::string program = tmp_.file("restore_sealed_memfd_tree");
  RunResult cp = test::run({"cp", RESTORE_SEALED_MEMFD_TREE_PATH, program});
  ASSERT_TRUE(cp.exited && cp.exit_code == 0) << cp.err;
  ASSERT_EQ(chmod(program.c_str(), 0755), 0);
  compare_tree_ = false;
  // The tree runs as nobody too: a restore never gives more privilege
  // than the processes had, so a root tree is refused for that first.
  ASSERT_EQ(chmod(dir().c_str(), 0755), 0);
  Program::Options o;
  o.log = log_path();
  ASSERT_NO_FATAL_FAILURE(start_argv({setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", program, go_path(),
                                      dir(), "none-unprivileged"},
                                     o));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(chmod(image_path().c_str(), 0644), 0);
  RunResult r = test::run({setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", imgtool(), "restore",
                           "--pidns", image_path()},
                          60);
  expect_one_line_failure(r, "an unprivileged --pidns restore may not open");
}

}  // namespace
}  // namespace ckpt::restoretest
