// Test support for `imgtool dump`: a target process started with
// posix_spawn, and small readers of its /proc state.
//
// A Target is spawned with stdout on a pipe and stdin on a pipe that never
// gets data; the constructor returns once the target has printed "ready"
// (or failed, see error()). A background thread reaps it the moment it
// exits, so a dump never sees a zombie left by the test, and the exit
// status is available through wait_exit(). The destructor SIGKILLs the
// target through a pidfd (never a recycled pid) and joins the reaper, so
// nothing is left behind even when an assertion fails half-way.
#pragma once

#include <atomic>
#include <string>
#include <sys/types.h>
#include <thread>
#include <vector>

#include "subprocess.h"

namespace ckpt::dumptest {

/// The imgtool under test: $CKPT_TEST_IMGTOOL if set, else the one built.
std::string imgtool();

class Target {
 public:
  explicit Target(const std::vector<std::string> &argv, int ready_timeout_s = 30);
  ~Target();
  Target(const Target &) = delete;
  Target &operator=(const Target &) = delete;

  /// True once "ready" was read; otherwise error() says why.
  bool ready() const { return ready_; }
  const std::string &error() const { return error_; }
  pid_t pid() const { return pid_; }
  /// Lines the target printed before "ready".
  const std::vector<std::string> &lines() const { return lines_; }
  /// The rest of the line "KEY rest" printed before ready, or "".
  std::string value(const std::string &key) const;

  /// SIGSTOPs the target and waits until /proc says 'T'. False on timeout.
  bool stop();
  /// Waits up to timeout_s for the target to exit; true and the wait
  /// status in *status if it did.
  bool wait_exit(int *status, int timeout_s = 30);

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int out_ = -1;        // its stdout
  int in_ = -1;         // write end of its stdin, held open, never written
  bool ready_ = false;
  std::string error_;
  std::vector<std::string> lines_;
  std::thread reaper_;
  std::atomic<bool> reaped_{false};
  int status_ = 0;
};

/// /proc/PID/stat state letter, or 0 if the process is gone.
char proc_state(pid_t pid);
/// TracerPid from /proc/PID/status, or -1 if unreadable.
int tracer_pid(pid_t pid);
/// Thread ids from /proc/PID/task, ascending.
std::vector<pid_t> task_tids(pid_t pid);
/// Polls (bounded) until proc_state(pid) == state.
bool wait_for_state(pid_t pid, char state, int timeout_s = 10);
/// Polls (bounded) until every thread of pid is blocked in system call
/// `nr` (per /proc/PID/task/TID/syscall).
bool wait_all_in_syscall(pid_t pid, long nr, int timeout_s = 10);
/// Reads 8 bytes at addr of process pid (process_vm_readv). False on error.
bool read_remote_u64(pid_t pid, unsigned long addr, unsigned long *value);

/// Sorted names in dir (without . and ..).
std::vector<std::string> dir_listing(const std::string &dir);
std::string read_file(const std::string &path);
bool write_file(const std::string &path, const std::string &data);
bool path_exists(const std::string &path);  // lstat: symlinks count

/// Runs argv with stderr merged into stdout (in order), stdin /dev/null.
test::RunResult run_merged(const std::vector<std::string> &argv, int hang_guard_s = 120);
/// `diff -u` of two texts, for failure messages.
std::string unified_diff(const std::string &a, const std::string &b, const std::string &label_a,
                         const std::string &label_b);
/// Lines of text (without '\n').
std::vector<std::string> split_lines(const std::string &text);
/// Does /proc/cpuinfo list this flag?
bool cpu_has_flag(const std::string &flag);

}  // namespace ckpt::dumptest
