// Dirty tracking between dumps (issue #11): a dump that lets the program
// run on leaves a userfaultfd-WP tracker in it, and `dump --parent` reads
// only the pages it saw written, comparing only what tracking cannot vouch
// for (mappings made, moved or replaced since). restore_dirty_tracking
// changes its memory in each of those ways between dumps and checks every
// word after the restore, and that it has no tracker.
#include "dirty_tracking_fixture.h"

namespace ckpt::restoretest {
namespace {

using namespace dirty;

// Four links, each on the one before: tracking decides A's pages (reading
// none of them), the replaced, moved and new mappings are compared or
// stored, and the last link restores every word; the restored process has
// no tracker and is otherwise the process that was dumped.
TEST_F(DirtyTracking, TrackedChainRestoresEveryWord) {
  compare_state_ = true;
  ASSERT_NO_FATAL_FAILURE(start_program());
  const unsigned table_before = fd_table_size(pid_);
  ASSERT_GE(table_before, 64u);
  Stats s0 = dump_link(0, -1);
  EXPECT_EQ(s0.trackers, 1u) << s0.note;
  // A first dump arms before the freeze, which finds the tracker and only
  // resets it (DECISIONS 260).
  EXPECT_EQ(s0.prearmed, 1u) << s0.note;
  EXPECT_EQ(s0.prearmed_kept, 1u) << s0.note;

  // The tracker: one userfaultfd, close-on-exec, marked O_APPEND, in the
  // upper half of the fd table it found, which did not grow (growing a
  // shared table waits for an RCU grace period inside the freeze: DECISIONS
  // 258); not in the image.
  auto uffds = userfaultfds(pid_);
  ASSERT_EQ(uffds.size(), 1u);
  EXPECT_GE(unsigned(uffds[0].first), table_before / 2);
  EXPECT_LT(unsigned(uffds[0].first), table_before);
  EXPECT_EQ(fd_table_size(pid_), table_before);
  EXPECT_EQ(std::strtoul(uffds[0].second.c_str(), nullptr, 8) & (O_APPEND | O_CLOEXEC), unsigned(O_APPEND | O_CLOEXEC))
      << uffds[0].second;
  RunResult info = test::run({imgtool(), "info", "--json", link(0)}, 60);
  ASSERT_TRUE(info.exited && info.exit_code == 0) << info.err;
  json j = json::parse(info.out);
  for (const json &fd : j["processes"][0]["fds"]) {
    EXPECT_EQ(fd["path"].get<std::string>().find("userfaultfd"), std::string::npos) << fd.dump();
    EXPECT_EQ(fd["path"].get<std::string>().find("ckpt-dirty-tracker"), std::string::npos) << fd.dump();
  }
  EXPECT_EQ(j["dirty_tracking"]["armed"], true) << info.out;
  EXPECT_GE(j["dirty_tracking"]["armed_bytes"].get<unsigned long long>(), 8 * kMiB);

  for (int n = 1; n <= 3; n++) {
    ASSERT_NO_FATAL_FAILURE(step(n));
    Stats s = dump_link(n, n - 1, n == 3);
    SCOPED_TRACE("link " + std::to_string(n));
    // A (8 MiB) and the rest of the old memory: decided by tracking.
    EXPECT_GE(s.tracked, 8 * kMiB) << s.note;
    EXPECT_GE(s.written, kTenthOfA);
    EXPECT_LE(s.written, kTenthOfA + 2 * kMiB);
    // Compared: at link 1 Q (a new mapping where the parent had one),
    // 64 KiB, and pages of read-only mappings (relro); never A. (M moved
    // where the parent had nothing, and N is new: both stored.)
    EXPECT_LE(s.compared, 2 * kMiB);
    if (n == 1) {
      EXPECT_GE(s.compared, 64 * 1024);
    }
    EXPECT_EQ(s.trackers, n == 3 ? 0u : 1u);
    EXPECT_LE(file_size(link(n)), file_size(link(0)) * 30 / 100);
    RunResult i = test::run({imgtool(), "info", "--json", link(n)}, 60);
    ASSERT_TRUE(i.exited && i.exit_code == 0) << i.err;
    json jn = json::parse(i.out);
    EXPECT_EQ(jn["dirty_tracking"]["used"], true);
    EXPECT_EQ(jn["dirty_tracking"]["tracked_bytes"].get<unsigned long long>(), s.tracked);
    EXPECT_EQ(jn["dirty_tracking"]["compared_bytes"].get<unsigned long long>(), s.compared);
  }
  ASSERT_NO_FATAL_FAILURE(restore_last(3));
}

// CKPT_DIRTY_TRACKING=off: no tracker, every page compared; the chain
// restores the same.
TEST_F(DirtyTracking, ComparedChainWhenTrackingIsOff) {
  setenv("CKPT_DIRTY_TRACKING", "off", 1);
  ASSERT_NO_FATAL_FAILURE(start_program());
  Stats s0 = dump_link(0, -1);
  EXPECT_EQ(s0.trackers, 0u);
  EXPECT_TRUE(userfaultfds(pid_).empty());
  for (int n = 1; n <= 2; n++) {
    ASSERT_NO_FATAL_FAILURE(step(n));
    Stats s = dump_link(n, n - 1, n == 2);
    expect_compared_because(s, "off");
    EXPECT_LE(file_size(link(n)), file_size(link(0)) * 30 / 100);
  }
  ASSERT_NO_FATAL_FAILURE(restore_last(2));
}

// Each dump makes a new tracker: a dump on an older parent than the last
// dump must not trust the newer tracker (it saw only the writes since the
// last dump) and compares instead; the restore proves nothing was lost.
TEST_F(DirtyTracking, ANewerTrackerIsNotTrustedForAnOlderParent) {
  ASSERT_NO_FATAL_FAILURE(start_program());
  dump_link(0, -1);
  ASSERT_NO_FATAL_FAILURE(step(1));
  Stats s1 = dump_link(1, 0);
  EXPECT_GE(s1.tracked, 8 * kMiB);
  ASSERT_NO_FATAL_FAILURE(step(2));
  Stats s2 = dump_link(2, 0, true);  // on link0, not link1
  expect_compared_because(s2, "not the parent's");
  ASSERT_NO_FATAL_FAILURE(restore_last(2));
}

// Tracking is the default (DECISIONS 168): a plain dump arms a tracker,
// --no-track-dirty arms none.
TEST_F(DirtyTracking, PlainDumpArmsAndNoTrackDirtyDoesNot) {
  ASSERT_NO_FATAL_FAILURE(start_program());
  RunResult none = dump(pid_, link(0), {"--stats", "--no-track-dirty"});
  ASSERT_TRUE(none.exited && none.exit_code == 0) << none.status() << "\n" << none.err;
  EXPECT_EQ(parse_stats(none.err).trackers, 0u) << none.err;
  EXPECT_TRUE(userfaultfds(pid_).empty());
  RunResult plain = dump(pid_, link(1), {"--stats"});
  ASSERT_TRUE(plain.exited && plain.exit_code == 0) << plain.status() << "\n" << plain.err;
  EXPECT_EQ(parse_stats(plain.err).trackers, 1u) << plain.err;
  EXPECT_EQ(userfaultfds(pid_).size(), 1u);
}

// A later dump keeps the process's tracker (the same fd and inode) and
// names itself in its epoch instead of closing it and arming a new one.
TEST_F(DirtyTracking, LaterDumpsReuseTheTrackerAndNameThemselvesInItsEpoch) {
  ASSERT_NO_FATAL_FAILURE(start_program());
  auto inode = [&](int fd) {
    struct stat st {};
    EXPECT_EQ(stat(("/proc/" + std::to_string(pid_) + "/fd/" + std::to_string(fd)).c_str(), &st), 0);
    return st.st_ino;
  };
  const unsigned table = fd_table_size(pid_);
  dump_link(0, -1);
  auto first = userfaultfds(pid_);
  ASSERT_EQ(first.size(), 1u);
  ino_t ino = inode(first[0].first);
  auto epoch = tracker_epoch(pid_);
  EXPECT_GE(unsigned(epoch.first), table / 2);
  EXPECT_EQ(epoch.second, image_id_of(link(0)));
  for (int n = 1; n <= 2; n++) {
    RunResult r = dump(pid_, link(n), {"--stats"});
    ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
    EXPECT_NE(r.err.find("trackers armed 1, trackers reused 1"), std::string::npos) << r.err;
    EXPECT_EQ(userfaultfds(pid_), first);
    EXPECT_EQ(inode(first[0].first), ino);
    EXPECT_EQ(tracker_epoch(pid_), std::make_pair(epoch.first, image_id_of(link(n))));
  }
}

// A reusing dump that fails after its reset still leaves its own id in the
// tracker's epoch: a later dump on the parent before it must not trust
// the tracker (which now saw only the writes since the failed dump), and
// the last link restores every word.
TEST_F(DirtyTracking, FailedReusingDumpLeavesTheParentUntrusted) {
  ASSERT_NO_FATAL_FAILURE(start_program());
  dump_link(0, -1);
  ASSERT_EQ(tracker_epoch(pid_).second, image_id_of(link(0)));
  ASSERT_NO_FATAL_FAILURE(step(1));
  setenv("CKPT_FAULT", "dump-before-link:eio", 1);
  RunResult r = dump(pid_, link(1), {"--parent", "link0.core"});
  unsetenv("CKPT_FAULT");
  ASSERT_TRUE(r.exited && r.exit_code != 0) << r.status() << "\n" << r.err;
  EXPECT_NE(tracker_epoch(pid_).second, image_id_of(link(0)));
  Stats s = dump_link(1, 0, true);
  expect_compared_because(s, "reset it since");
  ASSERT_NO_FATAL_FAILURE(restore_last(1));
}

// A new tracker whose epoch memfd cannot be made, or cannot be written
// (CKPT_FAULT), is not kept: it would be scanned at every dump and never
// trusted (decision 200). The dump succeeds and says why.
TEST_F(DirtyTracking, NewTrackerWithoutAnEpochIsNotKept) {
  ASSERT_NO_FATAL_FAILURE(start_program());
  int n = 0;
  for (const char *fault : {"dump-tracker-epoch-memfd:eio", "dump-tracker-epoch-write:eio"}) {
    SCOPED_TRACE(fault);
    setenv("CKPT_FAULT", fault, 1);
    RunResult r = dump(pid_, link(n++), {"--stats"});
    unsetenv("CKPT_FAULT");
    ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
    Stats s = parse_stats(r.err);
    EXPECT_EQ(s.trackers, 0u) << r.err;
    EXPECT_NE(s.note.find("epoch"), std::string::npos) << r.err;
    EXPECT_TRUE(userfaultfds(pid_).empty()) << "a tracker was left in the process";
    EXPECT_EQ(tracker_epoch(pid_).first, -1);
  }
}

// A reused tracker whose epoch cannot be written: the dump succeeds (its
// pages chosen by the tracker), the tracker is left as it was, not reset,
// its epoch naming the dump before; the image names no tracker, so the
// next dump on it compares, and the chain restores every word.
TEST_F(DirtyTracking, FailedEpochWriteOfAReusedTrackerFallsBackToComparing) {
  std::vector<std::pair<int, std::string>> before;
  ASSERT_NO_FATAL_FAILURE(start_with_a_tracker(before));
  ASSERT_NO_FATAL_FAILURE(step(1));
  setenv("CKPT_FAULT", "dump-tracker-epoch-write:eio", 1);
  Stats s1 = dump_link(1, 0);
  unsetenv("CKPT_FAULT");
  EXPECT_GE(s1.tracked, 8 * kMiB);
  EXPECT_EQ(s1.trackers, 0u);
  EXPECT_NE(s1.note.find("epoch"), std::string::npos) << s1.note;
  EXPECT_EQ(userfaultfds(pid_), before);
  EXPECT_EQ(tracker_epoch(pid_).second, image_id_of(link(0)));
  ASSERT_NO_FATAL_FAILURE(step(2));
  Stats s2 = dump_link(2, 1, true);
  EXPECT_EQ(s2.tracked, 0u);
  EXPECT_GE(s2.compared, 8 * kMiB);
  ASSERT_NO_FATAL_FAILURE(restore_last(2));
}

}  // namespace
}  // namespace ckpt::restoretest
