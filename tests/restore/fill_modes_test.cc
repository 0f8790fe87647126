// The restorer's ways of placing and hashing checked fills (decision
// 230): read into place and hashed there (the default, on AVX2 where the
// CPU has it), the portable hash (CKPT_RESTORE_FILL=scalar) and decision
// 211's scratch buffer placed by process_vm_writev (=scratch). Each way
// restores the same whole state, and each refuses a damaged byte with
// verify's line. restore_bigmem "split" has 64 MiB in many VMAs, a
// read-only page in every 64 KiB, so fills start and end inside slices.
#include <gtest/gtest.h>

#include <cstdlib>
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
// made), and "second" leaves every slice of the shared fills to the second
// filler, so that the damaged byte below is read in by it.
const std::vector<std::string> kModes = {"", "scalar", "scratch", "scratch,scalar", "one", "two", "second", "second,scalar"};

// CKPT_RESTORE_FILL=mode for one scope (unset again after it).
struct FillMode {
  explicit FillMode(const std::string &mode) {
    if (mode.empty()) unsetenv("CKPT_RESTORE_FILL");
    else setenv("CKPT_RESTORE_FILL", mode.c_str(), 1);
  }
  ~FillMode() { unsetenv("CKPT_RESTORE_FILL"); }
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

TEST_F(FillModes, UnknownWordIsOneLine) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:7"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  FillMode m("scratch,fast");
  RunResult r = restore(image_path());
  expect_one_line_failure(r, "CKPT_RESTORE_FILL: unknown word 'fast' (known: scratch, scalar, refuse-force, one, two, second)");
  EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " exists after a refused restore";
}

}  // namespace
}  // namespace ckpt::restoretest
