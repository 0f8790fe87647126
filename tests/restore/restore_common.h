// Support for the `imgtool restore` end-to-end tests (zdtm style).
//
// A test starts a program from tests/programs/restore_*.c with
// argv = {program, GOFILE, WORKDIR, extra...}, reads "KEY value" lines up
// to "ready" from its stdout, dumps it with --kill, creates GOFILE and
// restores it. The restored program checks itself and exits 0, or writes
// "FAIL: ..." lines to its stderr (a regular file, log_path()) and exits
// non-zero; the test asserts the status imgtool restore passes on.
//
// The test process is a child subreaper: a restored process whose imgtool
// went away (--detach, or a hang guard) becomes our child, and TearDown
// kills and reaps whatever children are left, so no test leaves a process
// behind or a zombie holding a pid the next restore needs.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <sys/types.h>
#include <thread>
#include <vector>

#include "subprocess.h"

namespace ckpt::restoretest {

using test::RunResult;
using test::TempDir;

/// The imgtool under test: $CKPT_TEST_IMGTOOL if set, else the one built.
std::string imgtool();

/// A program under test. stdin is a pipe the test holds (write_stdin()),
/// stdout a pipe read up to "ready", stderr appends to `log` (or /dev/null).
/// A thread reaps it the moment it exits; the destructor SIGKILLs it
/// through a pidfd (never a recycled pid).
class Program {
 public:
  struct Options {
    std::string log;            ///< stderr file ("" = /dev/null)
    std::string stdout_file;    ///< stdout to this file instead of the ready pipe
    std::string cwd;            ///< working directory ("" = ours)
    int ready_timeout_s = 30;
  };
  Program(const std::vector<std::string> &argv, const Options &options);
  ~Program();
  Program(const Program &) = delete;
  Program &operator=(const Program &) = delete;

  bool ready() const { return ready_; }
  const std::string &error() const { return error_; }
  pid_t pid() const { return pid_; }
  std::string value(const std::string &key) const;
  bool write_stdin(const std::string &bytes);
  /// Waits up to timeout_s for the program to exit; true and the wait
  /// status in *status if it did.
  bool wait_exit(int *status, int timeout_s = 30);

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int out_ = -1, in_ = -1;
  bool ready_ = false;
  std::string error_;
  std::vector<std::string> lines_;
  std::thread reaper_;
  std::atomic<bool> reaped_{false};
  int status_ = 0;
};

RunResult dump(pid_t pid, const std::string &image, const std::vector<std::string> &extra = {});
/// `imgtool restore [extra...] image` in the foreground.
RunResult restore(const std::string &image, const std::vector<std::string> &extra = {}, int hang_guard_s = 90);

/// A failed restore: non-zero exit, exactly one line on stderr starting
/// "imgtool restore: " and containing `needle` (case-insensitive, if set).
void expect_one_line_failure(const RunResult &r, const std::string &needle);

bool pid_exists(pid_t pid);          ///< /proc/PID exists (zombies count)
char proc_state(pid_t pid);          ///< /proc/PID/stat state, 0 if gone
pid_t proc_ppid(pid_t pid);          ///< -1 if gone
std::string read_file(const std::string &path);
bool write_file(const std::string &path, const std::string &data);
std::vector<std::string> split_lines(const std::string &text);
double now_s();
/// Polls `pred` every 10 ms until it holds or timeout_s passes.
template <typename F>
bool wait_until(F pred, double timeout_s) {
  double deadline = now_s() + timeout_s;
  for (;;) {
    if (pred()) return true;
    if (now_s() > deadline) return false;
    usleep(10000);
  }
}

/// Fixture: a work directory, the image and go-file paths, the program
/// under test, and cleanup of every child left over.
class RestoreTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  std::string go_path() const { return tmp_.file("go"); }
  std::string image_path() const { return tmp_.file("img.core"); }
  std::string log_path() const { return tmp_.file("stderr.log"); }
  std::string dir() const { return tmp_.path(); }
  std::string log() const { return read_file(log_path()); }

  /// Starts program with {GOFILE, WORKDIR, extra...}, stderr to
  /// log_path(); asserts "ready". Call through ASSERT_NO_FATAL_FAILURE.
  void start(const std::string &program, const std::vector<std::string> &extra = {});
  void start_argv(const std::vector<std::string> &argv, const Program::Options &options);
  /// Dumps the program with --kill (and `extra` options) and waits until
  /// it is gone.
  void dump_kill(const std::vector<std::string> &extra = {});
  /// Creates the go file.
  void go();
  /// go(), restore in the foreground, expect exit `code` and one more
  /// "PASS" in pass_file_ (the log by default).
  void restore_expect(int code, const std::vector<std::string> &extra = {});

  TempDir tmp_;
  std::unique_ptr<Program> program_;
  pid_t pid_ = -1;  ///< the program's (original and restored) pid
  /// restore_expect() checks that one more "PASS" line appeared here.
  std::string pass_file_;
  /// TearDown fails the test when a child is still running (false where
  /// the restored program's own children outlive it, e.g. bash's sleep).
  bool fail_on_leftovers_ = true;
};

}  // namespace ckpt::restoretest
