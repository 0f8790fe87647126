// Dirty tracking between dumps (issue #11): a dump that lets the program
// run on leaves a userfaultfd-WP tracker in it, and `dump --parent` reads
// only the pages it saw written, comparing only what tracking cannot vouch
// for (mappings made, moved or replaced since). restore_dirty_tracking
// changes its memory in each of those ways between dumps and checks every
// word after the restore, and that it has no tracker.
#include <algorithm>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <regex>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "file_size.h"
#include "restore_common.h"
#include "swap_file.h"

namespace ckpt::restoretest {
namespace {

using json = nlohmann::json;
using test::file_size;

// The numbers of a `dump --stats` line.
struct Stats {
  unsigned long long memory = 0, parent = 0, tracked = 0, written = 0, compared = 0;
  unsigned trackers = 0;
  unsigned prearmed = 0, prearmed_kept = 0;  // made before the freeze, and of those found by it
  std::string note;  // why tracking was not used, in parentheses
};

Stats parse_stats(const std::string &err) {
  Stats s;
  auto number = [&](const std::string &before, const std::string &after) -> unsigned long long {
    std::smatch m;
    std::regex re(before + " (\\d+)" + after);
    // A missing field reads as 0 (and fails the tests that need it).
    return std::regex_search(err, m, re) ? std::stoull(m[1]) : 0;
  };
  s.memory = number("memory", " bytes");
  s.parent = number("parent", " bytes");
  s.tracked = number("tracked", " bytes");
  s.written = number("written", " bytes");
  s.compared = number("compared", " bytes");
  s.trackers = static_cast<unsigned>(number("trackers armed", ""));
  s.prearmed = static_cast<unsigned>(number("armed before the freeze", ""));
  s.prearmed_kept = static_cast<unsigned>(number("armed before the freeze \\d+ \\(kept", "\\)"));
  size_t open = err.find('(');
  if (open != std::string::npos) s.note = err.substr(open);
  return s;
}

// The fds of pid that are userfaultfds: (fd number, fdinfo flags).
std::vector<std::pair<int, std::string>> userfaultfds(pid_t pid) {
  std::vector<std::pair<int, std::string>> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR *d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent *e = readdir(d)) {
    char link[256];
    ssize_t n = readlink((dir + "/" + e->d_name).c_str(), link, sizeof link - 1);
    if (n <= 0) continue;
    link[n] = 0;
    if (std::string(link) != "anon_inode:[userfaultfd]") continue;
    std::string info = read_file("/proc/" + std::to_string(pid) + "/fdinfo/" + e->d_name);
    std::smatch m;
    std::regex flags("flags:\\s*(\\d+)");
    out.push_back({std::atoi(e->d_name), std::regex_search(info, m, flags) ? m[1].str() : ""});
  }
  closedir(d);
  return out;
}

// The size of pid's fd table (/proc/PID/status "FDSize"), 0 if unreadable.
unsigned fd_table_size(pid_t pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  std::smatch m;
  std::regex size("FDSize:\\s*(\\d+)");
  return std::regex_search(status, m, size) ? unsigned(std::stoul(m[1])) : 0;
}

// The tracker's epoch memfd (DECISIONS 189) of pid: (fd, the image id of
// the dump that last reset the tracker, as hex), or (-1, "") without one.
std::pair<int, std::string> tracker_epoch(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR *d = opendir(dir.c_str());
  std::pair<int, std::string> out{-1, ""};
  while (d) {
    dirent *e = readdir(d);
    if (!e) break;
    char link[256];
    ssize_t n = readlink((dir + "/" + e->d_name).c_str(), link, sizeof link - 1);
    if (n <= 0) continue;
    link[n] = 0;
    if (std::string(link) != "/memfd:ckpt-dirty-tracker (deleted)") continue;
    // magic u32, pid i32, start time u64, tracker inode u64, image id u8[16]
    std::string bytes = read_file(dir + "/" + e->d_name);
    EXPECT_EQ(bytes.size(), 40u);
    out.first = std::atoi(e->d_name);
    for (size_t i = 24; i < bytes.size(); i++) {
      char hex[3];
      std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned char>(bytes[i]));
      out.second += hex;
    }
  }
  if (d) closedir(d);
  return out;
}

// The image id of an image file, as hex (imgtool info --json).
std::string image_id_of(const std::string &image) {
  RunResult info = test::run({imgtool(), "info", "--json", image}, 60);
  EXPECT_TRUE(info.exited && info.exit_code == 0) << info.err;
  return json::parse(info.out)["identity"]["image_id"].get<std::string>();
}

constexpr unsigned long long kMiB = 1ull << 20;

// A dump that compared its memory with the parent instead of trusting a
// tracker, for the reason `why` (a part of its --stats note).
void expect_compared_because(const Stats &s, const char *why) {
  EXPECT_EQ(s.tracked, 0u);
  EXPECT_GE(s.compared, 8 * kMiB);
  EXPECT_NE(s.note.find(why), std::string::npos) << s.note;
}
// restore_dirty_tracking's A: 8 MiB, one page in ten rewritten per step.
constexpr unsigned long long kTenthOfA = 205 * 4096;

// Pages of [start, start + bytes) of pid that pagemap shows swapped out
// (bit 62), -1 if pagemap cannot be read.
long swapped_pages(pid_t pid, unsigned long long start, unsigned long long bytes) {
  int fd = open(("/proc/" + std::to_string(pid) + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  std::vector<uint64_t> e(bytes / 4096);
  ssize_t n = pread(fd, e.data(), e.size() * 8, static_cast<off_t>(start / 4096 * 8));
  close(fd);
  if (n != static_cast<ssize_t>(e.size() * 8)) return -1;
  long swapped = 0;
  for (uint64_t x : e) swapped += (x >> 62) & 1;
  return swapped;
}

class DirtyTracking : public RestoreTest {
 protected:
  void TearDown() override {
    unsetenv("CKPT_DIRTY_TRACKING");
    RestoreTest::TearDown();
  }

  std::string link(int n) const { return tmp_.file("link" + std::to_string(n) + ".core"); }

  void step(int n) {
    ASSERT_TRUE(write_file(tmp_.file("step" + std::to_string(n)), ""));
    ASSERT_TRUE(wait_until([&] { return access(tmp_.file("done" + std::to_string(n)).c_str(), F_OK) == 0; }, 30))
        << "generation " << n << " never written; program stderr:\n"
        << log();
  }

  // Dumps link n (on link `parent` unless it is negative) with --stats.
  Stats dump_link(int n, int parent, bool kill = false) {
    std::vector<std::string> opts = {"--stats", "--track-dirty"};
    if (parent >= 0) opts.insert(opts.end(), {"--parent", "link" + std::to_string(parent) + ".core"});
    if (kill) {
      if (compare_state_) {
        before_state_ = test::capture_idle_state(pid_);
        EXPECT_EQ(before_state_.error, "") << "the program before the last dump";
      }
      opts.push_back("--kill");
    }
    RunResult d = dump(pid_, link(n), opts);
    EXPECT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
    EXPECT_EQ(split_lines(d.err).size(), 1u) << d.err;
    if (kill) {
      EXPECT_TRUE(wait_until([&] { return !pid_exists(pid_); }, 20));
    }
    return parse_stats(d.err);
  }

  void start_program() {
    pass_file_ = log_path();
    ASSERT_NO_FATAL_FAILURE(start(RESTORE_DIRTY_TRACKING_PATH));
  }

  // Starts the program and dumps it once, which leaves it one tracker:
  // the userfaultfds it then holds.
  void start_with_a_tracker(std::vector<std::pair<int, std::string>> &uffds) {
    ASSERT_NO_FATAL_FAILURE(start_program());
    dump_link(0, -1);
    uffds = userfaultfds(pid_);
    ASSERT_EQ(uffds.size(), 1u);
  }

  void restore_last(int n) {
    ASSERT_EQ(::link(link(n).c_str(), image_path().c_str()), 0);
    // A restored program that lost a generation (its counter in a page
    // taken from an older link) would find the step files and write it
    // again, and pass its check: they go first.
    for (int k = 1; k <= n; k++) unlink(tmp_.file("step" + std::to_string(k)).c_str());
    ASSERT_NO_FATAL_FAILURE(restore_expect(0));
    EXPECT_NE(log().find("generation " + std::to_string(n) + " checked"), std::string::npos) << log();
  }
};

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

namespace ckpt::restoretest {
namespace {

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
