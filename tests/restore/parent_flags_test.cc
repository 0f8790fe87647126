// An increment reads /proc/PID/maps before its freeze and takes the
// VmFlags PREV recorded (smaps_from_parent.h, DECISIONS 264); the copy's
// smaps confirms them. A whole-mapping madvise since PREV changes no line
// of /proc/PID/maps: the copy must show it, the dump freeze again with
// smaps read inside, and the image hold the right flags and bytes.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <unistd.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class ParentFlags : public RestoreTest, public ::testing::WithParamInterface<const char *> {
 protected:
  std::string link(int n) const { return tmp_.file("link" + std::to_string(n) + ".core"); }

  RunResult dump_traced(int n, const std::vector<std::string> &extra) {
    std::vector<std::string> opts = {"--stats", "--track-dirty"};
    opts.insert(opts.end(), extra.begin(), extra.end());
    setenv("CKPT_TRACE_TIMES", "1", 1);
    RunResult r = dump(pid_, link(n), opts);
    unsetenv("CKPT_TRACE_TIMES");
    return r;
  }
};

TEST_P(ParentFlags, AnIncrementAfterAWholeMappingMadviseHasItsFlagsAndBytes) {
  const std::string advice = GetParam();
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_PARENT_FLAGS_PATH, {advice}));
  RunResult full = dump_traced(0, {});
  ASSERT_TRUE(full.exited && full.exit_code == 0) << full.status() << "\n" << full.err;
  // No parent: smaps read before the freeze, as before.
  EXPECT_NE(full.err.find(" capture: maps (smaps read before) "), std::string::npos) << full.err;

  ASSERT_TRUE(write_file(tmp_.file("step1"), ""));
  ASSERT_TRUE(wait_until([&] { return access(tmp_.file("done1").c_str(), F_OK) == 0; }, 30)) << log();
  RunResult incr = dump_traced(1, {"--parent", "link0.core"});
  ASSERT_TRUE(incr.exited && incr.exit_code == 0) << incr.status() << "\n" << incr.err;
  EXPECT_NE(incr.err.find(", freeze snapshot\n"), std::string::npos) << incr.err;
  EXPECT_NE(incr.err.find(" capture: maps (flags from the parent) "), std::string::npos) << incr.err;
  std::string again = ", smaps in a second freeze (process " + std::to_string(pid_) + ": ";
  if (advice == "none") {
    EXPECT_EQ(incr.err.find(", smaps in a second freeze"), std::string::npos) << incr.err;
  } else {
    EXPECT_NE(incr.err.find(again), std::string::npos) << incr.err;
    // The second attempt read smaps inside the window.
    EXPECT_NE(incr.err.find(" capture: smaps "), std::string::npos) << incr.err;
  }
  ASSERT_EQ(kill(pid_, SIGKILL), 0);
  int status = 0;
  ASSERT_TRUE(program_->wait_exit(&status, 10));
  RunResult verified = imgtool_run({"verify", link(1)});
  EXPECT_TRUE(verified.exited && verified.exit_code == 0) << verified.status() << "\n" << verified.err;
  ASSERT_EQ(::link(link(1).c_str(), image_path().c_str()), 0);
  unlink(tmp_.file("step1").c_str());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_NE(log().find("generation 1 checked"), std::string::npos) << log();
}

INSTANTIATE_TEST_SUITE_P(Advice, ParentFlags, ::testing::Values("none", "dontfork", "wipeonfork", "dontdump"),
                         [](const auto &info) { return std::string(info.param); });

}  // namespace
}  // namespace ckpt::restoretest
