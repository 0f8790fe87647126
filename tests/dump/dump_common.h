// Shared by the `imgtool dump` end-to-end tests: running imgtool and the
// checks every failure and every image must pass.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "one_line_failure.h"
#include "subprocess.h"
#include "target.h"

namespace ckpt::dumptest {

using test::RunResult;
using test::TempDir;

inline RunResult dump(pid_t pid, const std::string &out, const std::vector<std::string> &extra = {}) {
  std::vector<std::string> argv = {imgtool(), "dump", "--pid", std::to_string(pid), "-o", out};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return test::run(argv, 120);
}

/// `imgtool verify`: intact and restorable here, now (after --kill).
inline RunResult verify(const std::string &image) { return test::run({imgtool(), "verify", image}, 120); }
/// `imgtool verify --intact`: undamaged, whatever this machine says (the
/// process of a leave-running dump still holds its pid, so a full verify
/// says "not restorable here now").
inline RunResult verify_intact(const std::string &image) {
  return test::run({imgtool(), "verify", "--intact", image}, 120);
}

/// A dump that must have failed: non-zero exit, exactly one line on stderr
/// starting "imgtool dump: " and (if non-empty) containing `needle`
/// (case-insensitive), nothing on stdout.
inline void expect_one_line_failure(const RunResult &r, const std::string &needle) {
  test::expect_one_line_failure(r, "imgtool dump: ", needle);
}

inline void expect_success(const RunResult &r) {
  ASSERT_TRUE(r.started);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\nstderr:\n" << r.err;
  EXPECT_EQ(r.err, "");
}

/// Running (or sleeping) and not traced by anyone.
inline void expect_running_untraced(pid_t pid) {
  char s = proc_state(pid);
  EXPECT_TRUE(s == 'R' || s == 'S' || s == 'D') << "state '" << s << "' of " << pid;
  EXPECT_EQ(tracer_pid(pid), 0) << "TracerPid of " << pid;
}

}  // namespace ckpt::dumptest
