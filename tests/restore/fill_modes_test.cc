// The restorer's ways of placing and hashing checked fills (decision
// 230): read into place and hashed there (the default, on AVX2 where the
// CPU has it), the portable hash (CKPT_RESTORE_FILL=scalar) and decision
// 211's scratch buffer placed by process_vm_writev (=scratch). Each way
// restores the same whole state, and each refuses a damaged byte with
// verify's line. restore_bigmem "split" has 64 MiB in many VMAs, a
// read-only page in every 64 KiB, so fills start and end inside slices.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <utility>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "file_size.h"
#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

// "" shares the 64 MiB fill between two fillers where the machine has two
// CPUs (decision 248); "one" keeps it to one; "two" asks for the pair
// whatever the CPUs and sizes (and fails if the second filler cannot be
// made; the program's own short fills then go through the queue, decision
// 267), and "second" leaves every slice of the shared and queued fills to
// the second filler, so that the damaged byte below is read in by it.
// "busy" takes no CPU as free: the pair only for an image not in the page
// cache (decision 257; ColdImageIsSampledCold below).
const std::vector<std::string> kModes = {"", "scalar", "scratch", "scratch,scalar", "one", "two", "second", "second,scalar", "busy"};

// CKPT_RESTORE_FILL=mode for one scope (unset again after it).
struct FillMode {
  explicit FillMode(const std::string &mode) {
    if (mode.empty()) unsetenv("CKPT_RESTORE_FILL");
    else setenv("CKPT_RESTORE_FILL", mode.c_str(), 1);
  }
  ~FillMode() { unsetenv("CKPT_RESTORE_FILL"); }
};

// CKPT_TRACE_TIMES=1 for one scope.
struct TraceTimes {
  TraceTimes() { setenv("CKPT_TRACE_TIMES", "1", 1); }
  ~TraceTimes() { unsetenv("CKPT_TRACE_TIMES"); }
};

class FillModes : public RestoreTest {};

TEST_F(FillModes, EveryWayRestoresTheSameState) {
  compare_state_ = true;
  pass_file_ = log_path();  // restore_bigmem reports on its stderr
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_BIGMEM_PATH, {"split"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  for (const std::string &mode : kModes) {
    SCOPED_TRACE("CKPT_RESTORE_FILL=" + mode);
    FillMode m(mode);
    ASSERT_NO_FATAL_FAILURE(restore_compare_expect(0));
  }
}

TEST_F(FillModes, EveryWayRefusesADamagedByteWithVerifysLine) {
  pass_file_ = log_path();
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_BIGMEM_PATH, {"split"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  struct stat st{};
  ASSERT_EQ(stat(image_path().c_str(), &st), 0);
  // The middle of the image: inside the 64 MiB of stored memory.
  long long at = st.st_size / 2;
  ASSERT_TRUE(test::flip_byte(image_path(), at));
  RunResult v = test::run({imgtool(), "verify", image_path()}, 120);
  ASSERT_EQ(v.err_lines().size(), 1u) << v.err;
  const std::string verify_prefix = "imgtool verify: ";
  ASSERT_EQ(v.err_lines()[0].rfind(verify_prefix, 0), 0u) << v.err;
  std::string line = v.err_lines()[0].substr(verify_prefix.size());
  ASSERT_NE(line.find("checksum mismatch"), std::string::npos) << line;
  std::string ran_before = read_file(pass_file_);
  for (const std::string &mode : kModes) {
    SCOPED_TRACE("CKPT_RESTORE_FILL=" + mode);
    FillMode m(mode);
    RunResult r = restore(image_path());
    expect_one_line_failure(r, "");
    if (!r.err_lines().empty()) {
      EXPECT_EQ(r.err_lines()[0], "imgtool restore: " + line);
    }
    EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " exists after a refused restore";
    EXPECT_EQ(read_file(pass_file_), ran_before) << "the damaged image ran";
  }
  ASSERT_TRUE(test::flip_byte(image_path(), at));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// The sampled pages of each restore's "N of M sampled image pages cached"
// line (CKPT_TRACE_TIMES; one per layout pass), as {N, M}.
std::vector<std::pair<int, int>> sampled_lines(const std::string &err) {
  std::vector<std::pair<int, int>> out;
  const std::string key = "restorer: ";
  for (size_t at = err.find(key); at != std::string::npos; at = err.find(key, at + 1)) {
    int cached = -1, sampled = -1;
    if (std::sscanf(err.c_str() + at, "restorer: %d of %d sampled image pages cached", &cached, &sampled) == 2)
      out.emplace_back(cached, sampled);
  }
  return out;
}

// Decision 257: with no CPU free ("busy"), the image's residency in the
// page cache decides the second filler. Evicted (its pages dropped with
// POSIX_FADV_DONTNEED), most sampled pages are not cached and the restore,
// with the pair, still runs the program to its check; read again, (at
// least half of) the sampled pages are cached.
TEST_F(FillModes, ColdImageIsSampledCold) {
  // The sampling is asked for only with two CPUs to share the fill, and
  // tmpfs keeps its pages whatever POSIX_FADV_DONTNEED says: neither can
  // show a cold image.
  cpu_set_t cpus;
  ASSERT_EQ(sched_getaffinity(0, sizeof cpus, &cpus), 0);
  if (CPU_COUNT(&cpus) < 2) GTEST_SKIP() << "one CPU: the restore never samples the page cache";
  pass_file_ = log_path();
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_BIGMEM_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  struct statfs fs;
  ASSERT_EQ(statfs(image_path().c_str(), &fs), 0);
  if (fs.f_type == TMPFS_MAGIC) GTEST_SKIP() << "the image is on tmpfs, whose pages cannot be evicted";
  FillMode m("busy");
  TraceTimes trace;
  for (bool cold : {true, false}) {
    SCOPED_TRACE(cold ? "evicted image" : "image read");
    int fd = open(image_path().c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    if (cold) {
      ASSERT_EQ(fdatasync(fd), 0);
      ASSERT_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    } else {
      std::vector<char> buf(1 << 20);
      while (read(fd, buf.data(), buf.size()) > 0) {
      }
    }
    close(fd);
    std::string ran_before = read_file(pass_file_);
    RunResult r = restore(image_path());
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
    EXPECT_NE(read_file(pass_file_), ran_before) << "the restored program did not pass its check";
    auto lines = sampled_lines(r.err);
    ASSERT_FALSE(lines.empty()) << r.err;
    for (auto [cached, sampled] : lines) {
      EXPECT_EQ(sampled, 16) << r.err;
      if (cold) EXPECT_LT(2 * cached, sampled) << r.err;
      else EXPECT_GE(2 * cached, sampled) << r.err;  // memory pressure may evict a page meanwhile
    }
  }
}

// Decision 267: many short fills (a warm start's private file pages)
// go through the pair's queue, each taken whole by either filler and
// hashed by the leader in file order. restore_bigmem "holes" (64 MiB)
// stores 2 of every 16 pages: 1024 fills of 8 KiB; its read-only 1 MiB
// is one fill long enough for a job (with "two": 512 KiB), shared among
// the queued ones. "two" engages the pair (the trace line says so),
// "second" leaves every queued fill and slice to the second filler; each
// restores the same whole state.
TEST_F(FillModes, ManyShortFillsGoThroughTheQueue) {
  compare_state_ = true;
  pass_file_ = log_path();
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_BIGMEM_PATH, {"holes"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  for (const std::string &mode : {"two", "second", "second,scalar"}) {
    SCOPED_TRACE("CKPT_RESTORE_FILL=" + mode);
    FillMode m(mode);
    ASSERT_NO_FATAL_FAILURE(restore_compare_expect(0));
  }
  FillMode m("two");
  TraceTimes trace;
  ASSERT_NO_FATAL_FAILURE(go());
  std::string ran_before = read_file(pass_file_);
  RunResult r = restore(image_path());
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_NE(read_file(pass_file_), ran_before) << "the restored program did not pass its check";
  const std::string key = "restorer: two fillers (";
  size_t at = r.err.find(key);
  ASSERT_NE(at, std::string::npos) << r.err;
  unsigned long long in_jobs = 0, queued = 0;
  ASSERT_EQ(std::sscanf(r.err.c_str() + at + key.size(), "%llu KiB in long fills, %llu KiB queued", &in_jobs, &queued), 2)
      << r.err;
  EXPECT_GE(in_jobs, 1024u) << r.err;
  EXPECT_GE(queued, 8192u) << r.err;  // 1024 x 8 KiB, and the program's own private file pages
}

TEST_F(FillModes, UnknownWordIsOneLine) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:7"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  FillMode m("scratch,fast");
  RunResult r = restore(image_path());
  expect_one_line_failure(r, "CKPT_RESTORE_FILL: unknown word 'fast' (known: scratch, scalar, refuse-force, one, two, second, busy)");
  EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " exists after a refused restore";
}

}  // namespace
}  // namespace ckpt::restoretest
