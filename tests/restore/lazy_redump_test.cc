// A dump of a process a lazy restore brought back while its helper still
// serves it (DECISIONS 269): the pages the helper has not filled yet are
// neither present nor swapped, yet not zero, so the dump refuses, with one
// line naming the pid and range and what to do, and leaves the process as
// it was (--kill or not). Once the helper is done (it unregisters every
// range), the same process dumps and restores whole.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

#include "known_state_differences.h"
#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class LazyRedump : public RestoreTest {};

bool served_by_uffd(pid_t pid) {
  return read_file("/proc/" + std::to_string(pid) + "/smaps").find(" um") != std::string::npos;
}

TEST_F(LazyRedump, RefusedWhileTheHelperServesThenWhole) {
  pass_file_ = log_path();  // restore_bigmem reports on its stderr
  Program::Options o;
  o.log = log_path();
  ASSERT_NO_FATAL_FAILURE(start_argv({RESTORE_BIGMEM_PATH, go_path(), "16"}, o));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  // The helper's background copy held back for ten minutes: every range
  // it serves stays registered ("um") while the dumps below run.
  setenv("CKPT_LAZY_BACKGROUND_DELAY_MS", "600000", 1);
  RunResult r = restore(image_path(), {"--lazy", "--detach", "--pidfile", restored_pidfile()});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err << log();
  ASSERT_TRUE(served_by_uffd(pid_)) << "no range of the restored process is registered with the helper";
  test::CaptureOptions options = restored_capture_options(pid_, {"--lazy"});
  test::ProcessState before = test::capture_idle_state(pid_, options);
  ASSERT_EQ(before.error, "");
  std::string again = tmp_.file("again.core");
  std::vector<std::string> listing = dir_listing(dir());
  // --kill (a full freeze), the default (trackers armed before the freeze,
  // snapshot mode) and snapshot mode without tracking.
  for (std::vector<std::string> extra :
       {std::vector<std::string>{"--kill"}, std::vector<std::string>{}, std::vector<std::string>{"--no-track-dirty"}}) {
    std::string how = extra.empty() ? "(default)" : extra[0];
    RunResult d = dump(pid_, again, extra);
    ASSERT_TRUE(d.exited) << how;
    EXPECT_NE(d.exit_code, 0) << how;
    std::vector<std::string> lines = d.err_lines();
    ASSERT_EQ(lines.size(), 1u) << how << ": " << d.err;
    EXPECT_EQ(lines[0].rfind("imgtool dump: pid " + std::to_string(pid_) + ": cannot checkpoint mapping ", 0), 0u)
        << how << ": " << lines[0];
    EXPECT_NE(lines[0].find("served by a userfaultfd"), std::string::npos) << how << ": " << lines[0];
    EXPECT_NE(lines[0].find("CKPT_LAZY_BACKGROUND_DELAY_MS"), std::string::npos) << how << ": " << lines[0];
    EXPECT_NE(access(again.c_str(), F_OK), 0) << how << ": a refused dump wrote the image";
    EXPECT_EQ(dir_listing(dir()), listing) << how;
    // As it was: running, untraced, no tracker left, same state.
    char s = proc_state(pid_);
    EXPECT_TRUE(s == 'S' || s == 'R') << how << ": state " << s;
    EXPECT_EQ(tracer_pid(pid_), 0) << how;
    test::ProcessState after = test::capture_idle_state(pid_, options);
    ASSERT_EQ(after.error, "") << how;
    std::vector<std::string> diff = test::diff_states(before, after);
    EXPECT_TRUE(diff.empty()) << how << ": the refused dump changed the process:\n" << join_lines(diff, 40);
  }
  unsetenv("CKPT_LAZY_BACKGROUND_DELAY_MS");
  // The same image again, the background copy at once: once no range is
  // registered the dump works, and its image restores whole (the program
  // checks every word of its 16 MiB).
  ASSERT_EQ(kill(pid_, SIGKILL), 0);
  int st = 0;
  ASSERT_TRUE(test::wait_child_exit(pid_, &st, 30));
  setenv("CKPT_LAZY_BACKGROUND_DELAY_MS", "0", 1);
  r = restore(image_path(), {"--lazy", "--detach", "--pidfile", restored_pidfile()});
  unsetenv("CKPT_LAZY_BACKGROUND_DELAY_MS");
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err << log();
  ASSERT_TRUE(wait_until([&] { return !served_by_uffd(pid_); }, 60)) << "the helper still serves after 60 s";
  RunResult d = dump(pid_, again, {"--kill"});
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  ASSERT_TRUE(test::wait_child_exit(pid_, &st, 30));
  ASSERT_NO_FATAL_FAILURE(go());
  r = restore(again, {}, 90);
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err << log();
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
}

}  // namespace
}  // namespace ckpt::restoretest
