// How every imgtool subcommand must fail ("non-zero with exactly one clear
// line on stderr", the user-facing contract), checked in one place for the
// suites that run imgtool. Header only: the support library itself
// does not link GoogleTest.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "subprocess.h"

namespace ckpt::test {

/// A command that must have failed: exited (not killed, not hung) with a
/// non-zero status, exactly one '\n'-terminated line on stderr starting
/// `prefix` ("imgtool dump: ") and containing `needle` (case-insensitive;
/// not checked when empty), nothing on stdout.
inline void expect_one_line_failure(const RunResult &r, const std::string &prefix, const std::string &needle) {
  ASSERT_TRUE(r.started);
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(r.exited) << r.status();
  EXPECT_NE(r.exit_code, 0) << "stderr: " << r.err;
  std::vector<std::string> lines = r.err_lines();
  ASSERT_EQ(lines.size(), 1u) << "stderr:\n" << r.err;
  EXPECT_EQ(r.err.back(), '\n');
  EXPECT_EQ(lines[0].rfind(prefix, 0), 0u) << lines[0];
  if (!needle.empty()) {
    EXPECT_NE(lower(lines[0]).find(lower(needle)), std::string::npos) << "expected \"" << needle << "\" in: " << lines[0];
  }
  EXPECT_EQ(r.out, "") << "stdout should be empty";
}

}  // namespace ckpt::test
