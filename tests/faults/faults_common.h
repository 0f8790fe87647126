// Support for the fault tests (tests/faults): a dump or restore killed or
// failed at a named point (CKPT_FAULT, docs/design/fault-points.md) or at
// a random moment must leave the target as it was and the destination
// folder as it was; a restore killed before its point of no return leaves
// no process behind and its pids free.
#pragma once

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

#include "restore_common.h"

namespace ckpt::faulttest {

using restoretest::imgtool;
using test::RunResult;

/// Runs argv with CKPT_FAULT=fault (none when empty).
RunResult run_with_fault(const std::string &fault, const std::vector<std::string> &argv, int hang_guard_s = 120);

/// Starts argv as our child (stdin, stdout /dev/null; stderr to err_path)
/// and returns its pid, without waiting.
pid_t spawn(const std::vector<std::string> &argv, const std::string &err_path);

/// The names in a folder (not . and ..).
std::set<std::string> folder_names(const std::string &dir);

/// Every thread of pid: not traced (TracerPid 0) and not stopped (State
/// not t/T), as /proc shows it.
void expect_untraced_and_running(pid_t pid);

/// The live processes of the tree rooted at pid (pid first).
std::vector<pid_t> tree_of(pid_t pid);

/// `r` exited with a non-zero status and exactly one line on stderr, which
/// holds each of `needles`. ASSERT_NO_FATAL_FAILURE.
void expect_failed_in_one_line(const RunResult &r, const std::vector<std::string> &needles);

class FaultTest : public restoretest::RestoreTest {
 protected:
  /// Captures the idle state of every process of the target's tree and the
  /// destination folder's names.
  void remember_target();
  /// The target's tree runs on as remembered: untraced, not stopped, every
  /// process's state equal, and the folder holds what it held.
  void expect_target_as_before();
  /// go(), and the (never dumped) program finishes with exit 0 and PASS.
  void expect_program_passes();

  std::vector<pid_t> tree_;
  std::vector<test::ProcessState> tree_state_;
  std::set<std::string> folder_;
};

}  // namespace ckpt::faulttest
