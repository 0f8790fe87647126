// The DirtyTracking fixture and its helpers (dirty_tracking_test.cc,
// dirty_tracking_faults_test.cc): restore_dirty_tracking started, dumped
// link by link with --stats, and its tracker read from /proc.
#pragma once

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

namespace ckpt::restoretest::dirty {

using json = nlohmann::json;
using test::file_size;

// The numbers of a `dump --stats` line.
struct Stats {
  unsigned long long memory = 0, parent = 0, tracked = 0, written = 0, compared = 0;
  unsigned trackers = 0;
  unsigned prearmed = 0, prearmed_kept = 0;  // made before the freeze, and of those found by it
  std::string note;  // why tracking was not used, in parentheses
};

inline Stats parse_stats(const std::string &err) {
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
inline std::vector<std::pair<int, std::string>> userfaultfds(pid_t pid) {
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
inline unsigned fd_table_size(pid_t pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  std::smatch m;
  std::regex size("FDSize:\\s*(\\d+)");
  return std::regex_search(status, m, size) ? unsigned(std::stoul(m[1])) : 0;
}

// The tracker's epoch memfd (DECISIONS 189) of pid: (fd, the image id of
// the dump that last reset the tracker, as hex), or (-1, "") without one.
inline std::pair<int, std::string> tracker_epoch(pid_t pid) {
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
inline std::string image_id_of(const std::string &image) {
  RunResult info = test::run({imgtool(), "info", "--json", image}, 60);
  EXPECT_TRUE(info.exited && info.exit_code == 0) << info.err;
  return json::parse(info.out)["identity"]["image_id"].get<std::string>();
}

constexpr unsigned long long kMiB = 1ull << 20;

// A dump that compared its memory with the parent instead of trusting a
// tracker, for the reason `why` (a part of its --stats note).
inline void expect_compared_because(const Stats &s, const char *why) {
  EXPECT_EQ(s.tracked, 0u);
  EXPECT_GE(s.compared, 8 * kMiB);
  EXPECT_NE(s.note.find(why), std::string::npos) << s.note;
}
// restore_dirty_tracking's A: 8 MiB, one page in ten rewritten per step.
constexpr unsigned long long kTenthOfA = 205 * 4096;

// Pages of [start, start + bytes) of pid that pagemap shows swapped out
// (bit 62), -1 if pagemap cannot be read.
inline long swapped_pages(pid_t pid, unsigned long long start, unsigned long long bytes) {
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

}  // namespace ckpt::restoretest::dirty
