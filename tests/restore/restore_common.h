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

#include <functional>
#include <memory>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "process_state.h"
#include "spawned_process.h"
#include "subprocess.h"

namespace ckpt::restoretest {

using test::RunResult;
using test::TempDir;

/// The imgtool under test: $CKPT_TEST_IMGTOOL if set, else the one built.
std::string imgtool();

/// A program under test (see spawned_process.h): stdin a pipe the test
/// holds, stdout a pipe read up to "ready", stderr appends to `log`.
using Program = test::SpawnedProcess;
using namespace test::process_names;

RunResult dump(pid_t pid, const std::string &image, const std::vector<std::string> &extra = {});
/// `imgtool restore [extra...] image` in the foreground.
RunResult restore(const std::string &image, const std::vector<std::string> &extra = {}, int hang_guard_s = 90);

/// A failed restore: non-zero exit, exactly one line on stderr starting
/// "imgtool restore: " and containing `needle` (case-insensitive, if set).
void expect_one_line_failure(const RunResult &r, const std::string &needle);

/// pid's live descendants (zombies left out), from
/// /proc/PID/task/*/children, depth first.
std::vector<pid_t> live_descendants(pid_t pid);

/// A mount of a whole filesystem (its root "/", not a bind mount of a
/// subtree), from /proc/self/mountinfo.
struct WholeMount {
  std::string mountpoint;
  std::string fs;  ///< what follows " - ": filesystem type, source, super options
};
std::vector<WholeMount> whole_filesystem_mounts();

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
  /// it is gone; with compare_state_, captures its idle state first
  /// (before_state_); with compare_tree_, that of every live process of
  /// its tree too (before_tree_).
  void dump_kill(const std::vector<std::string> &extra = {});
  /// before_state_ and, with compare_tree_, before_tree_: the idle state
  /// of pid_ and of its live descendants, asserted captured (dump_kill()
  /// calls it; a test that dumps otherwise calls it before its dump).
  void capture_tree_before();
  /// Creates the go file.
  void go();
  /// `imgtool ARGS...`, ended after `timeout_s`.
  RunResult imgtool_run(const std::vector<std::string> &args, int timeout_s = 60);
  /// `imgtool info --json` of the image, asserted to exit 0 and to parse,
  /// into *out. Call through ASSERT_NO_FATAL_FAILURE.
  void info_json(nlohmann::json *out);
  /// go(), restore in the foreground, expect exit `code` and one more
  /// "PASS" in pass_file_ (the log by default). With compare_state_, or
  /// compare_tree_ but for a --pidns restore, see restore_compare_expect()
  /// instead.
  void restore_expect(int code, const std::vector<std::string> &extra = {});
  /// start(program), dump_kill(), restore_expect(0, restore_extra): a
  /// program that checks itself, end to end. ASSERT_NO_FATAL_FAILURE.
  void start_dump_restore(const std::string &program, const std::vector<std::string> &restore_extra = {});
  /// The same for a program given `args` after GOFILE and WORKDIR.
  void start_dump_restore_args(const std::string &program, const std::vector<std::string> &args,
                               const std::vector<std::string> &restore_extra = {});
  /// Restores with --detach --pidfile (we are the subreaper, so the
  /// restored program becomes our child), captures its state once it is
  /// idle again (polling for the go file), compares it with before_state_
  /// (every difference fails the test unless known_state_differences.cc
  /// lists it), and so each process of before_tree_, then go(), and
  /// expects exit `code` (128+N: death by signal N) and one more "PASS" in
  /// pass_file_.
  void restore_compare_expect(int code, const std::vector<std::string> &extra = {});
  /// Captures the restored program's state once it is idle (pid_) and
  /// compares it with before_state_, as restore_compare_expect() does.
  void expect_state_as_before(const test::CaptureOptions &options = {});
  /// The options a comparison after a restore with `extra` needs: --lazy
  /// maps the image where the process had anonymous memory, and waits
  /// (bounded) until the lazy helper has served all of `pid`'s memory.
  test::CaptureOptions restored_capture_options(pid_t pid, const std::vector<std::string> &extra);
  /// The idle state of each process of `pids`, asserted captured, into
  /// `before` (for expect_processes_as_before). ASSERT_NO_FATAL_FAILURE.
  void capture_processes_before(const std::vector<pid_t> &pids, std::map<pid_t, test::ProcessState> *before);
  /// Each restored process of `pids` equals its state in `before` (taken
  /// before the dump), known differences aside: for trees.
  void expect_processes_as_before(const std::map<pid_t, test::ProcessState> &before, const std::vector<pid_t> &pids,
                                  const std::vector<std::string> &restore_extra = {});
  /// capture_processes_before(pids), dump_kill(), a restore with --detach
  /// --pidfile restored_pidfile(), and expect_processes_as_before(pids):
  /// a tree's whole state. ASSERT_NO_FATAL_FAILURE.
  void detach_restore_and_compare(const std::vector<pid_t> &pids);
  std::string restored_pidfile() const { return tmp_.file("restored.pid"); }
  /// fd -> `imgtool info --json` state of each fd of `type` ("socket") of
  /// the image's process `index`; empty if info fails (a failure, too).
  std::map<int, std::string> fd_states(const std::string &type, size_t index = 0);
  /// `imgtool gdb IMAGE -- -batch -ex "ckpt fds"`: the fd table gdb's
  /// script shows, each kind's state after it.
  RunResult gdb_ckpt_fds();
  /// go(), and the original program (not killed: a dump left it running
  /// or refused) finishes within `timeout_s` with exit status 0.
  /// ASSERT_NO_FATAL_FAILURE.
  void expect_original_finishes(int timeout_s);
  /// `imgtool dump --kill` of the program is refused: it exits non-zero
  /// with one line on stderr starting "imgtool dump: pid PID: " and then
  /// `after_pid`, containing `why`, and writes no image.
  /// ASSERT_NO_FATAL_FAILURE.
  void expect_dump_kill_refused(const std::string &after_pid, const std::string &why);
  /// A tree program's pids, from its "pids P0 P1 ..." line.
  std::vector<pid_t> tree_pids() const;

  TempDir tmp_;
  std::unique_ptr<Program> program_;
  pid_t pid_ = -1;  ///< the program's (original and restored) pid
  /// restore_expect() checks that one more "PASS" line appeared here.
  std::string pass_file_;
  /// TearDown fails the test when a child is still running (false where
  /// the restored program's own children outlive it, e.g. bash's sleep).
  bool fail_on_leftovers_ = true;
  /// dump_kill() captures before_state_, restore_expect() compares with it.
  bool compare_state_ = false;
  test::ProcessState before_state_;
  /// For trees: compare_state_ for every live process of the program's
  /// tree, each captured before the dump and compared after the restore
  /// (restores with --pidns, whose pids here are others, are not compared).
  bool compare_tree_ = false;
  std::map<pid_t, test::ProcessState> before_tree_;  ///< the live descendants of pid_
  /// How restore_compare_expect() restores, given the options it needs
  /// (`--detach --pidfile F` and the test's): `imgtool restore IMAGE` when
  /// empty; `restore -` or `./IMAGE` (the exec form) in the tests of those.
  std::function<RunResult(const std::vector<std::string> &)> restore_command_;

 private:
  int pass_count() const;
};

/// A RestoreTest whose program reports ("PASS", "tick") to
/// WORKDIR/report.txt rather than to its stderr.
class ReportingRestoreTest : public RestoreTest {
 protected:
  void SetUp() override;
  std::string report() const { return read_file(tmp_.file("report.txt")); }
  static int count(const std::string &text, const std::string &what) { return test::count_occurrences(text, what); }
  /// `imgtool restore_args...` run in the foreground (go() already done):
  /// once the restored program has ticked 3 times, SIGTERM to imgtool
  /// reaches it and imgtool exits 128+SIGTERM, nothing on its stderr.
  /// ASSERT_NO_FATAL_FAILURE.
  void expect_sigterm_forwarded(const std::vector<std::string> &restore_args);
};

}  // namespace ckpt::restoretest
