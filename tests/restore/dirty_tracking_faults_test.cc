// Dirty tracking on the paths that fail (issue #11): a dump that fails or
// is killed after arming or pre-arming leaves the fd table as it was, an
// earlier tracker keeps its slot; and a tracked page swapped out between
// dumps is stored. The fixture: dirty_tracking_fixture.h.
#include "dirty_tracking_fixture.h"
#include "swap_file.h"

namespace ckpt::restoretest {
namespace {

using namespace dirty;

// A dump that fails or is killed after arming (at the link of the image)
// leaves no tracker where there was none, and that is so the moment the
// dumper's exit can be seen (the guard undoes it first: dump_guard.h).
TEST_F(DirtyTracking, FailedOrKilledDumpLeavesNoNewTracker) {
  ASSERT_NO_FATAL_FAILURE(start_program());
  for (const char *fault : {"dump-before-link:eio", "dump-before-link"}) {
    SCOPED_TRACE(fault);
    setenv("CKPT_FAULT", fault, 1);
    RunResult r = dump(pid_, link(0), {"--stats", "--full-freeze"});
    unsetenv("CKPT_FAULT");
    EXPECT_FALSE(r.exited && r.exit_code == 0) << r.err;
    EXPECT_TRUE(userfaultfds(pid_).empty()) << r.status() << "\n" << r.err;
    EXPECT_EQ(tracker_epoch(pid_).first, -1);
    EXPECT_EQ(access(link(0).c_str(), F_OK), -1);
  }
  // The same in snapshot mode, killed while the copy is read.
  setenv("CKPT_FAULT", "snapshot-midway", 1);
  RunResult r = dump(pid_, link(0), {"--short-freeze"});
  unsetenv("CKPT_FAULT");
  EXPECT_FALSE(r.exited) << r.status() << "\n" << r.err;
  EXPECT_TRUE(userfaultfds(pid_).empty());
  EXPECT_EQ(tracker_epoch(pid_).first, -1);
}

// pid's fds with what each refers to ("3 -> /dev/null" lines).
std::string fd_table(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd", out;
  std::vector<std::string> lines;
  if (DIR *d = opendir(dir.c_str())) {
    while (dirent *e = readdir(d)) {
      char link[256];
      ssize_t n = readlink((dir + "/" + e->d_name).c_str(), link, sizeof link - 1);
      if (n <= 0) continue;
      link[n] = 0;
      lines.push_back(std::string(e->d_name) + " -> " + link);
    }
    closedir(d);
  }
  std::sort(lines.begin(), lines.end());
  for (const std::string &l : lines) out += l + "\n";
  return out;
}

// A dump that fails or is killed after the pre-arm, before its freeze
// (dump-prearmed; DECISIONS 260), leaves the process's fd table as it was
// (no tracker, no epoch), the process untraced and running; the next dump
// arms normally.
TEST_F(DirtyTracking, FaultAfterThePreArmLeavesNoTracker) {
  ASSERT_NO_FATAL_FAILURE(start_program());
  const std::string before = fd_table(pid_);
  ASSERT_NE(before, "");
  for (const char *fault : {"dump-prearmed:eio", "dump-prearmed"}) {
    SCOPED_TRACE(fault);
    setenv("CKPT_FAULT", fault, 1);
    RunResult r = dump(pid_, link(0), {"--stats"});
    unsetenv("CKPT_FAULT");
    EXPECT_FALSE(r.exited && r.exit_code == 0) << r.err;
    if (std::string(fault).find(':') == std::string::npos) {
      EXPECT_EQ(r.term_signal, SIGKILL) << r.status() << "\n" << r.err;
    } else {
      EXPECT_EQ(split_lines(r.err).size(), 1u) << r.err;
    }
    EXPECT_EQ(fd_table(pid_), before) << r.status() << "\n" << r.err;
    EXPECT_EQ(access(link(0).c_str(), F_OK), -1);
    std::string status = read_file("/proc/" + std::to_string(pid_) + "/status");
    EXPECT_NE(status.find("TracerPid:\t0\n"), std::string::npos) << status;
    EXPECT_EQ(status.find("State:\tt"), std::string::npos) << status;
    EXPECT_EQ(status.find("State:\tT"), std::string::npos) << status;
  }
  Stats s = dump_link(0, -1);
  EXPECT_EQ(s.trackers, 1u) << s.note;
  EXPECT_EQ(s.prearmed, 1u) << s.note;
  EXPECT_EQ(userfaultfds(pid_).size(), 1u);
}

// A process that had a tracker keeps one (at the same fd) when a later
// dump fails: the fd table looks as it did.
TEST_F(DirtyTracking, FailedDumpKeepsTheTrackerSlotOfAnEarlierDump) {
  std::vector<std::pair<int, std::string>> before;
  ASSERT_NO_FATAL_FAILURE(start_with_a_tracker(before));
  setenv("CKPT_FAULT", "dump-before-link:eio", 1);
  RunResult r = dump(pid_, link(1), {"--parent", "link0.core"});
  unsetenv("CKPT_FAULT");
  EXPECT_TRUE(r.exited && r.exit_code != 0) << r.status() << "\n" << r.err;
  EXPECT_EQ(userfaultfds(pid_), before);
}


// A tracked page swapped out since the last dump: PAGEMAP_SCAN reports it
// swapped, which alone does not tell it from the tracker's uffd-wp marker
// on an empty entry, so its piece is planned per page from pagemap and
// smaps' Swap instead (writer/src/memory.cc, plan_tracked_piece). A is
// paged out (process_madvise MADV_PAGEOUT, a swap file on for the test)
// after generation 1 wrote a tenth of it: its written pages must be
// stored, and the restore from the increment checks every word. (Without
// the fallback they were planned as holes: A read back as zeros.)
TEST_F(DirtyTracking, SwappedOutTrackedPagesAreStoredFromSwap) {
  if (geteuid() != 0) GTEST_SKIP() << "a swap file needs root";
  // Not in the test's directory, which may be on tmpfs (no swap files).
  // One a killed run of this test left on goes first.
  const std::string prefix = "/var/tmp/ckpt-test-swap.";
  test::SwapFile::sweep_stale(prefix);
  test::SwapFile swap(prefix + std::to_string(getpid()), 32 * kMiB);
  if (swap.unsupported_here()) GTEST_SKIP() << swap.error();
  ASSERT_TRUE(swap.on()) << swap.error();
  ASSERT_NO_FATAL_FAILURE(start_program());
  unsigned long long a = std::stoull(program_->value("A"), nullptr, 16);
  dump_link(0, -1);
  ASSERT_EQ(userfaultfds(pid_).size(), 1u) << "no tracker: the piece would not be a tracked one";
  ASSERT_NO_FATAL_FAILURE(step(1));
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  ASSERT_GE(pidfd, 0) << strerror(errno);
  iovec range{reinterpret_cast<void *>(a), 8 * kMiB};
  long advised = syscall(SYS_process_madvise, pidfd, &range, 1, MADV_PAGEOUT, 0);
  int advise_errno = errno;
  close(pidfd);
  ASSERT_EQ(advised, static_cast<long>(8 * kMiB)) << strerror(advise_errno);
  // Most of A is out (a page the program touched again meanwhile may be
  // back in): the written tenth's pages among them.
  long swapped = swapped_pages(pid_, a, 8 * kMiB);
  ASSERT_GE(swapped, static_cast<long>(kTenthOfA / 4096)) << "pages of A swapped out";
  // Snapshot mode: tracked pieces are planned from the copy's
  // PAGEMAP_SCAN runs only there (a full freeze plans per page anyway).
  RunResult d = dump(pid_, link(1), {"--stats", "--track-dirty", "--parent", "link0.core", "--short-freeze", "--kill"});
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  EXPECT_NE(d.err.find(", freeze snapshot"), std::string::npos) << d.err;
  Stats s = parse_stats(d.err);
  EXPECT_GE(s.tracked, 8 * kMiB) << d.err;
  ASSERT_TRUE(wait_until([&] { return !pid_exists(pid_); }, 20));
  ASSERT_NO_FATAL_FAILURE(restore_last(1));
}

}  // namespace
}  // namespace ckpt::restoretest
