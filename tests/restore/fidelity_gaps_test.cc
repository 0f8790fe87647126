// The last gaps of issue 17 (restore fidelity, part 2): locked memory of a
// process that changed uid, plain mlockall(MCL_FUTURE), write leases,
// cgroup v2 settings of a cgroup made again, and the newer memfd seals;
// then the commit charge of private mappings and the mode of objects only
// mapped, which the whole-state comparison found.
// Each program checks itself after the restore (tests/programs/
// restore_fidelity_gaps.c, restore_locks.c), and its whole /proc state is
// compared before the dump and after the restore (compare_state_).
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class FidelityGaps : public RestoreTest {
 protected:
  FidelityGaps() { compare_state_ = true; }
};

// mlock()ed memory beyond a lowered RLIMIT_MEMLOCK (root may lock past
// it), then the process drops to an unprivileged uid: the restore must
// lock the range while it still may, not after the ids change.
TEST_F(FidelityGaps, LockedMemoryOfAProcessThatChangedUidStaysLocked) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore_args(RESTORE_FIDELITY_GAPS_PATH, {"mlock-setuid"}));
}

// The same with mlockall(MCL_FUTURE) set before the uid change: a mapping
// the unprivileged process makes after the restore is locked.
TEST_F(FidelityGaps, McLFutureOfAProcessThatChangedUidStillApplies) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore_args(RESTORE_FIDELITY_GAPS_PATH, {"mlock-setuid-future"}));
}

TEST_F(FidelityGaps, McLFutureOfAProcessThatChangedUidStillAppliesLazy) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore_args(RESTORE_FIDELITY_GAPS_PATH, {"mlock-setuid-future"}, {"--lazy"}));
}

// Plain mlockall(MCL_FUTURE), without MCL_ONFAULT: later mappings are
// locked and faulted in, earlier ones stay unlocked.
TEST_F(FidelityGaps, PlainMclFutureLocksLaterMappingsOnly) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore_args(RESTORE_FIDELITY_GAPS_PATH, {"mcl-future"}));
}

// A write lease (F_SETLEASE F_WRLCK) beside the read lease and the locks.
TEST_F(FidelityGaps, WriteLeaseIsHeldAgain) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore_args(RESTORE_LOCKS_PATH, {"write-lease"}));
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
}

// memfd seals newer than the four of the first fidelity issue:
// F_SEAL_FUTURE_WRITE on a memfd mapped writable before it was sealed,
// and F_SEAL_EXEC (MFD_NOEXEC_SEAL, and added later).
TEST_F(FidelityGaps, MemfdFutureWriteAndExecSeals) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore_args(RESTORE_FIDELITY_GAPS_PATH, {"seals"}));
}

TEST_F(FidelityGaps, MemfdFutureWriteAndExecSealsLazy) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore_args(RESTORE_FIDELITY_GAPS_PATH, {"seals"}, {"--lazy"}));
}

// Private mappings charged to commit ("ac") by their history, and
// read-only ones changed through /proc/self/mem that never were: the
// restored mappings are charged as the originals were (decision 237; the
// whole-state comparison sees every mapping's VmFlags, these included).
TEST_F(FidelityGaps, CommitChargeOfPrivateMappingsIsKept) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore_args(RESTORE_FIDELITY_GAPS_PATH, {"account"}));
}

TEST_F(FidelityGaps, CommitChargeOfPrivateMappingsIsKeptLazy) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore_args(RESTORE_FIDELITY_GAPS_PATH, {"account"}, {"--lazy"}));
}

// A kernel that refuses the restorer's forced writes into its own
// read-only mappings (proc_mem.force_override=never, Linux 6.12+; here
// CKPT_RESTORE_FILL=refuse-force acts it out): the restore still brings
// every byte back, the never-charged read-only mappings made writable
// for the fill and so charged, which the program's own check names and
// nothing else (decision 237's fallback).
TEST_F(FidelityGaps, RefusedForcedWritesFallBackToAWritableFill) {
  compare_state_ = false;  // the two charged mappings are the expected difference
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_FIDELITY_GAPS_PATH, {"account"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  setenv("CKPT_RESTORE_FILL", "refuse-force", 1);
  RunResult r = restore(image_path());
  unsetenv("CKPT_RESTORE_FILL");
  ASSERT_TRUE(r.exited) << r.status() << "\n" << r.err;
  EXPECT_EQ(r.exit_code, 1) << r.err << "\nprogram stderr:\n" << log();
  std::string out = log();
  EXPECT_NE(out.find("file-read-only-patched: 'ac' is 1 after the restore, 0 before"), std::string::npos) << out;
  EXPECT_NE(out.find("anon-read-only-patched: 'ac' is 1 after the restore, 0 before"), std::string::npos) << out;
  EXPECT_NE(out.find("2 check(s) failed"), std::string::npos) << out;
  EXPECT_EQ(out.find("lost its bytes"), std::string::npos) << out;
}

// The mode of a memfd and of an unlinked file that only a mapping holds
// (decision 238; the comparison reads it through map_files too).
TEST_F(FidelityGaps, ModeOfObjectsOnlyMappedIsKept) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore_args(RESTORE_FIDELITY_GAPS_PATH, {"mapped-modes"}));
}

// The cgroup2 mount, "" where there is none.
std::string cgroup2_mount() {
  for (const WholeMount &m : whole_filesystem_mounts())
    if (m.fs.rfind("cgroup2 ", 0) == 0) return m.mountpoint;
  return "";
}

std::string trimmed(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

// A cgroup v2 made for the process, with settings, removed after the dump:
// the restore makes it again with the same settings. The core files
// (cgroup.max.descendants, cgroup.max.depth) exist in every cgroup v2;
// the controllers' files where this machine gives v2 the controller (here
// only hugetlb: the others are bound to v1 hierarchies).
TEST_F(FidelityGaps, CgroupV2MadeAgainWithItsSettings) {
  std::string mount = cgroup2_mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mounted here";
  // Hand every controller the root has down to its children (restore does
  // the same for a cgroup it makes).
  std::istringstream available(read_file(mount + "/cgroup.controllers"));
  for (std::string c; available >> c;)
    if (c == "pids" || c == "memory" || c == "cpu" || c == "hugetlb")
      write_file(mount + "/cgroup.subtree_control", "+" + c);
  std::string cg = mount + "/ckpt-fid-test-" + std::to_string(getpid());
  ASSERT_EQ(mkdir(cg.c_str(), 0755), 0) << cg << ": " << strerror(errno);
  struct Remove {
    std::string dir;
    ~Remove() { rmdir(dir.c_str()); }
  } remove{cg};
  const std::vector<std::pair<std::string, std::string>> wanted = {
      {"cgroup.max.descendants", "5"}, {"cgroup.max.depth", "3"}, {"pids.max", "77"},
      {"memory.max", "536870912"}, {"memory.high", "268435456"}, {"cpu.max", "50000 100000"},
      {"cpu.weight", "42"}, {"hugetlb.2MB.max", "4194304"}};
  std::map<std::string, std::string> set;
  for (const auto &[file, value] : wanted) {
    std::string path = cg + "/" + file;
    if (access(path.c_str(), F_OK) != 0) continue;
    ASSERT_TRUE(write_file(path, value)) << path;
    set[file] = trimmed(read_file(path));
    ASSERT_EQ(set[file], value) << path;
  }
  ASSERT_TRUE(set.count("cgroup.max.descendants") && set.count("cgroup.max.depth")) << cg;
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_FIDELITY_GAPS_PATH, {"cgroup", cg}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(rmdir(cg.c_str()), 0) << cg << ": " << strerror(errno);
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  ASSERT_EQ(access(cg.c_str(), F_OK), 0) << cg << " was not made again";
  for (const auto &[file, value] : set) EXPECT_EQ(trimmed(read_file(cg + "/" + file)), value) << cg << "/" << file;
}

}  // namespace
}  // namespace ckpt::restoretest
