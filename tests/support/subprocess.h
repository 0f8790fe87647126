// Running external programs from tests: argv in, exit status and both
// output streams out. No shell is involved, so paths need no quoting.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

namespace ckpt::test {

struct RunResult {
  bool started = false;      ///< exec succeeded
  pid_t pid = -1;            ///< the child's pid (reaped: for names it made)
  bool timed_out = false;    ///< killed after the hang guard expired
  int exit_code = -1;        ///< valid when exited
  bool exited = false;       ///< terminated normally (not by a signal)
  int term_signal = 0;       ///< signal that killed it, if any
  std::string out;
  std::string err;

  /// "exit 0", "signal 11", "timed out": for failure messages.
  std::string status() const;
  /// Non-empty lines of err.
  std::vector<std::string> err_lines() const;
};

/// Runs argv[0] (looked up in PATH when it has no slash) with stdin from
/// /dev/null (or `stdin_fd`, when given), capturing stdout and stderr.
/// `hang_guard_s` only stops a hung child so the test fails instead of
/// hanging; no test asserts on time.
RunResult run(const std::vector<std::string> &argv, int hang_guard_s = 60, int stdin_fd = -1);

/// The first of `names` found in PATH (or as an absolute path), or "".
std::string find_tool(const std::vector<std::string> &names);

/// A fresh private directory under $TMPDIR (or /tmp), removed with its
/// contents when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Lower-cased copy.
std::string lower(std::string s);

/// How often `what` occurs in `text` (overlapping occurrences count).
int count_occurrences(const std::string &text, const std::string &what);

}  // namespace ckpt::test
