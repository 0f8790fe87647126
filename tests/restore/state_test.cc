// The restored process carries on with its state: each program checks
// itself after the restore and exits 0 (see tests/programs/restore_*.c).
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

// Besides its own checks, every program's whole /proc state is compared
// before the dump and after the restore (compare_state_, see
// restore_common.h and known_state_differences.cc).
class RestoreState : public RestoreTest {
 protected:
  RestoreState() { compare_state_ = true; }
};

TEST_F(RestoreState, Memory) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_MEMORY_PATH));
  EXPECT_EQ(program_->value("pid"), std::to_string(pid_));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
  // The program's MADV_HUGEPAGE region (4 MiB, 2 MiB-aligned) is read in
  // after the advice, so in huge pages, as the original had them; a fill
  // before the advice leaves it in 4 KiB pages until khugepaged comes by.
  unsigned long huge_kb = 0;
  size_t at = log().find("huge_kb_after_restore ");
  ASSERT_NE(at, std::string::npos) << log();
  huge_kb = std::stoul(log().substr(at + 22));
  EXPECT_GT(huge_kb, 0u) << "the MADV_HUGEPAGE region came back in small pages";
}

TEST_F(RestoreState, MemoryLazy) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_MEMORY_PATH, {"--lazy"}));
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
}

TEST_F(RestoreState, Threads) { ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_THREADS_PATH)); }

TEST_F(RestoreState, FileDescriptors) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_FDS_PATH));
  // Bytes in the stdin pipe that nobody read before the dump.
  ASSERT_TRUE(program_->write_stdin("stdin-bytes-from-the-test"));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_EQ(read_file(dir() + "/append.log"), "before\nafter\n");
  EXPECT_FALSE(access((dir() + "/unlinked.bin").c_str(), F_OK) == 0) << "the unlinked file came back with a name";
}

TEST_F(RestoreState, Signals) { ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_SIGNALS_PATH)); }

TEST_F(RestoreState, ProcessAttributes) { ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_PROCESS_PATH)); }

TEST_F(RestoreState, VectorRegistersLiveAcrossTheDump) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_AVX_PATH));
  if (!program_->value("skip").empty()) GTEST_SKIP() << "this CPU has " << program_->value("skip");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// The same with a non-default personality (setarch -R: ADDR_NO_RANDOMIZE).
TEST_F(RestoreState, ProcessAttributesWithPersonality) {
  std::string setarch = test::find_tool({"setarch"});
  ASSERT_FALSE(setarch.empty()) << "no setarch (scripts/setup.sh installs util-linux)";
  Program::Options o;
  o.log = log_path();
  ASSERT_NO_FATAL_FAILURE(start_argv({setarch, "x86_64", "-R", RESTORE_PROCESS_PATH, go_path(), dir()}, o));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// The process attributes of a process that is not root's: restored by
// root, it gets its user, group and supplementary groups back.
TEST_F(RestoreState, ProcessAttributesOfAnotherUser) {
  std::string setpriv = test::find_tool({"setpriv"});
  ASSERT_FALSE(setpriv.empty()) << "no setpriv (scripts/setup.sh installs util-linux)";
  // Sticky, as /tmp: the program writes here, but cannot replace the
  // image root writes (a folder others could write the image into is
  // refused by restore, docs/SECURITY.md).
  ASSERT_EQ(chmod(dir().c_str(), 01777), 0);
  Program::Options o;
  o.log = log_path();
  // setpriv execs the program: same pid.
  ASSERT_NO_FATAL_FAILURE(start_argv({setpriv, "--reuid=65534", "--regid=65534", "--groups=100,200",
                                      RESTORE_PROCESS_PATH, go_path(), dir()},
                                     o));
  ASSERT_EQ(program_->value("uid"), "65534");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
}

// The same with privileges dropped: no_new_privs set and CAP_SYS_ADMIN
// out of the bounding set (setpriv execs the program: same pid).
TEST_F(RestoreState, ProcessAttributesWithPrivilegesDropped) {
  std::string setpriv = test::find_tool({"setpriv"});
  ASSERT_FALSE(setpriv.empty()) << "no setpriv (scripts/setup.sh installs util-linux)";
  Program::Options o;
  o.log = log_path();
  ASSERT_NO_FATAL_FAILURE(
      start_argv({setpriv, "--nnp", "--bounding-set", "-sys_admin", RESTORE_PROCESS_PATH, go_path(), dir()}, o));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(before_state_.fields["status.NoNewPrivs"], "1");
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// imgtool run with SIGHUP and SIGTERM ignored (as under nohup or
// `trap '' HUP TERM`): the restored process has its own dispositions back,
// not its restorer's.
TEST_F(RestoreState, SignalsRestoredByACallerIgnoringSignals) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SIGNALS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  // imgtool inherits SIG_IGN across posix_spawn and exec.
  struct IgnoredWhileInScope {
    struct sigaction hup {}, term {};
    IgnoredWhileInScope() {
      struct sigaction ign {};
      ign.sa_handler = SIG_IGN;
      sigaction(SIGHUP, &ign, &hup);
      sigaction(SIGTERM, &ign, &term);
    }
    ~IgnoredWhileInScope() {
      sigaction(SIGHUP, &hup, nullptr);
      sigaction(SIGTERM, &term, nullptr);
    }
  } ignored;
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// Threads blocked in read, poll, select, sigwaitinfo, pause and sleeps:
// none returns early after the restore, each completes when released.
TEST_F(RestoreState, BlockedSystemCalls) { ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_SYSCALLS_PATH)); }

// A memfd and an unlinked file, each mapped MAP_SHARED with its fd open,
// and shared anonymous memory.
TEST_F(RestoreState, SharedMappingsStayShared) { ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_SHMEM_PATH)); }

// Per-process settings (issue 17): oom_score_adj 400, loginuid 3, child
// subreaper, THP disabled, membarrier private and global expedited
// registrations.
TEST_F(RestoreState, ProcessSettings) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SETTINGS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(before_state_.fields["oom_score_adj"], "400");
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
}

// Mappings with MAP_NORESERVE and each madvise flag, and mlockall's
// MCL_FUTURE | MCL_ONFAULT (issue 17).
TEST_F(RestoreState, MappingFlags) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_VMAFLAGS_PATH));
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
}

TEST_F(RestoreState, MappingFlagsLazy) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_VMAFLAGS_PATH, {"--lazy"}));
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
}

// flock (exclusive and shared), POSIX and OFD record locks and a read
// lease, held on the same open files after the restore (issue 17).
TEST_F(RestoreState, FileLocks) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_LOCKS_PATH));
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
}

// memfd seals (all four, none yet, and no sealing allowed); O_APPEND on a
// memfd's second open file and on a /dev/shm file; O_NONBLOCK on one of a
// pipe's two open files and on a dup()ed one (issue 17).
TEST_F(RestoreState, OpenFileFlagsAndMemfdSeals) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_OPENFILES_PATH));
  std::string shm = program_->value("shm");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
  unlink(shm.c_str());
}

// Shared file mappings keep what the kernel allowed (issue 17, "Memory"):
// a read-only shared mapping of a file opened O_RDWR can be made writable;
// a memfd and an unlinked file mapped twice stay one object with their fd.
TEST_F(RestoreState, SharedFileMappingsKeepWriteAccessAndSharing) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_FILEMAPS_PATH));
}

TEST_F(RestoreState, SharedFileMappingsKeepWriteAccessAndSharingLazy) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_FILEMAPS_PATH, {"--lazy"}));
}

// Unlinked files come back as the same files (issue 17): owner, mtime and
// holes of a recreated file, a memfd's owner, and an unlinked name whose
// file is still linked beside it reopened as that one inode.
TEST_F(RestoreState, UnlinkedFilesKeepOwnerTimeHolesAndLinks) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_UNLINKED_FILES_PATH));
}

// Fds numbered above imgtool's own RLIMIT_NOFILE (a server that raised
// its limit): found by bench/scale_bench.sh at 10,000 fds.
TEST_F(RestoreState, FdsAboveImgtoolsOwnLimit) {
  // imgtool inherits the usual soft limit of 1024 (the hard one stays, so
  // the program may raise its own).
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_GE(saved.rlim_max, 8192u) << "the program needs a hard RLIMIT_NOFILE of 8192";
  struct rlimit low = {1024, saved.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  start(RESTORE_HIGH_FDS_PATH);
  if (!HasFatalFailure()) dump_kill();
  if (!HasFatalFailure()) restore_expect(0);
  setrlimit(RLIMIT_NOFILE, &saved);
}

// Cgroups made for one test under the cgroup2 mount and the cgroup v1
// "pids" hierarchy, where this machine has them; removed (rmdir) at the
// end, when no process is left in them.
class TestCgroups {
 public:
  TestCgroups() {
    for (const WholeMount &m : whole_filesystem_mounts()) {
      const std::string &fs = m.fs;
      bool v2 = fs.rfind("cgroup2 ", 0) == 0;
      bool pids = fs.rfind("cgroup ", 0) == 0 && (fs.find(",pids") != std::string::npos || fs.find(" pids") != std::string::npos);
      if (!v2 && !pids) continue;
      std::string dir = m.mountpoint + "/ckpt-test-" + std::to_string(getpid()) + "-" + std::to_string(dirs.size());
      if (mkdir(dir.c_str(), 0755) == 0) dirs.push_back(dir);
    }
  }
  ~TestCgroups() {
    for (const std::string &d : dirs) rmdir(d.c_str());
  }
  std::vector<std::string> dirs;
};

// The same in cgroups other than the test's (and imgtool's): the restored
// process is back in them.
TEST_F(RestoreState, ProcessSettingsInOtherCgroups) {
  TestCgroups cgroups;
  if (cgroups.dirs.empty()) GTEST_SKIP() << "cannot make a cgroup here";
  std::vector<std::string> args = {go_path(), dir()};
  args.insert(args.end(), cgroups.dirs.begin(), cgroups.dirs.end());
  Program::Options o;
  o.log = log_path();
  std::vector<std::string> argv = {RESTORE_SETTINGS_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  ASSERT_NO_FATAL_FAILURE(start_argv(argv, o));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NE(before_state_.fields["cgroup"].find("/ckpt-test-"), std::string::npos) << before_state_.fields["cgroup"];
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
}

// Cgroups that are gone by restore time are made again, with the settings
// they had (issue 17, decision 120): the v1 pids cgroup's pids.max.
TEST_F(RestoreState, ProcessSettingsInMissingCgroupsMadeAgain) {
  TestCgroups cgroups;
  if (cgroups.dirs.empty()) GTEST_SKIP() << "cannot make a cgroup here";
  std::string pids_dir;
  for (const std::string &d : cgroups.dirs)
    if (access((d + "/pids.max").c_str(), F_OK) == 0) pids_dir = d;
  if (!pids_dir.empty()) {
    ASSERT_TRUE(write_file(pids_dir + "/pids.max", "77")) << pids_dir;
  }
  std::vector<std::string> argv = {RESTORE_SETTINGS_PATH, go_path(), dir()};
  argv.insert(argv.end(), cgroups.dirs.begin(), cgroups.dirs.end());
  Program::Options o;
  o.log = log_path();
  ASSERT_NO_FATAL_FAILURE(start_argv(argv, o));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  for (const std::string &d : cgroups.dirs) ASSERT_EQ(rmdir(d.c_str()), 0) << d << ": " << strerror(errno);
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
  for (const std::string &d : cgroups.dirs) EXPECT_EQ(access(d.c_str(), F_OK), 0) << d << " was not made again";
  if (!pids_dir.empty()) {
    EXPECT_EQ(read_file(pids_dir + "/pids.max"), "77\n") << "pids.max of the remade " << pids_dir;
  }
}

}  // namespace
}  // namespace ckpt::restoretest
