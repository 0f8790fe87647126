// The target changes under the dumper: threads come and go, mappings come
// and go, children are forked and reaped, a shell stops it mid-dump. Each
// dump completes (and restores) or refuses with one line; the target is
// never left traced or stopped by us.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

#include "faults_common.h"

namespace ckpt::faulttest {
namespace {

class ChangingTarget : public FaultTest, public ::testing::WithParamInterface<const char *> {};

TEST_P(ChangingTarget, DumpsCompleteAndTheTargetRunsOn) {
  pass_file_ = log_path();
  ASSERT_NO_FATAL_FAILURE(start(FAULT_CHURN_PATH, {GetParam()}));
  for (int round = 0; round < 3; round++) {
    SCOPED_TRACE("round " + std::to_string(round));
    RunResult r = restoretest::dump(pid_, image_path());
    ASSERT_TRUE(r.exited) << r.status();
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ASSERT_NO_FATAL_FAILURE(expect_untraced_and_running(pid_));
  }
  // The last image restores and the churn goes on there.
  fail_on_leftovers_ = std::string(GetParam()) != "fork";
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

INSTANTIATE_TEST_SUITE_P(Churn, ChangingTarget, ::testing::Values("threads", "mmap", "fork"));

// A shell's SIGSTOP in the middle of a dump: the dump completes or refuses
// with one line, and the target is left stopped, as the shell asked.
TEST_F(FaultTest, StoppedByAShellMidDumpStaysStopped) {
  pass_file_ = log_path();
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_BIGMEM_PATH, {"48"}));
  std::string err = tmp_.file("dump.err");
  pid_t dumper = spawn({imgtool(), "dump", "--pid", std::to_string(pid_), "-o", image_path()}, err);
  ASSERT_GT(dumper, 0);
  usleep(30000);
  ASSERT_EQ(kill(pid_, SIGSTOP), 0);
  int status = 0;
  ASSERT_EQ(waitpid(dumper, &status, 0), dumper);
  std::string lines = test::read_text_file(err);
  ASSERT_TRUE(WIFEXITED(status)) << "dumper status 0x" << std::hex << status;
  if (WEXITSTATUS(status) != 0) {
    EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 1) << lines;
  } else {
    EXPECT_EQ(lines, "");
  }
  EXPECT_TRUE(restoretest::wait_until([&] { return restoretest::proc_state(pid_) == 'T'; }, 5))
      << "state " << restoretest::proc_state(pid_) << " (the shell stopped it)";
  std::string status_text = test::read_text_file("/proc/" + std::to_string(pid_) + "/status");
  EXPECT_NE(status_text.find("TracerPid:\t0\n"), std::string::npos) << status_text;
  ASSERT_EQ(kill(pid_, SIGCONT), 0);
  ASSERT_NO_FATAL_FAILURE(expect_untraced_and_running(pid_));
  ASSERT_NO_FATAL_FAILURE(expect_program_passes());
}

}  // namespace
}  // namespace ckpt::faulttest
