// A test program started with posix_spawn, and small readers of /proc:
// shared by the dump, restore and gdb-script tests.
//
// The program's stdout is a pipe read up to the line "ready" (or a file);
// the "KEY value" lines before it are kept (value()). stdin is a pipe the
// test holds (write_stdin(); never closed, so a read blocks) or /dev/null;
// stderr appends to a log file, goes to /dev/null, or is the test's. A thread reaps the
// program the moment it exits, so a dump never finds a zombie left by the
// test and the wait status is there for wait_exit(). The destructor SIGKILLs
// it through a pidfd (never a recycled pid) and joins the reaper, so nothing
// is left behind even when an assertion fails half-way.
#pragma once

#include <atomic>
#include <string>
#include <sys/types.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace ckpt::test {

class SpawnedProcess {
 public:
  struct Options {
    std::string log;            ///< stderr appends here ("" = /dev/null)
    bool inherit_stderr = false;  ///< stderr is ours (log is ignored)
    std::string stdout_file;    ///< stdout to this file instead of the ready pipe
    std::string cwd;            ///< working directory ("" = ours)
    bool stdin_pipe = true;     ///< a pipe the test holds, else /dev/null
    int ready_timeout_s = 30;
    /// stdin /dev/null, stderr the test's: a program that reads nothing.
    static Options without_input() {
      Options o;
      o.stdin_pipe = false;
      o.inherit_stderr = true;
      return o;
    }
  };
  SpawnedProcess(const std::vector<std::string> &argv, const Options &options);
  ~SpawnedProcess();
  SpawnedProcess(const SpawnedProcess &) = delete;
  SpawnedProcess &operator=(const SpawnedProcess &) = delete;

  /// True once "ready" was read (at once with stdout_file); else error().
  bool ready() const { return ready_; }
  const std::string &error() const { return error_; }
  pid_t pid() const { return pid_; }
  /// Lines printed before "ready".
  const std::vector<std::string> &lines() const { return lines_; }
  /// The rest of the line "KEY rest" printed before "ready", or "".
  std::string value(const std::string &key) const;
  bool write_stdin(const std::string &bytes);
  /// SIGSTOPs it and waits until every thread shows 'T'. False on timeout.
  bool stop();
  /// Waits up to timeout_s for it to exit; true and the wait status in
  /// *status if it did.
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

double now_s();  ///< CLOCK_MONOTONIC seconds
/// Polls `pred` every 2 ms until it holds or timeout_s passes.
template <typename F>
bool wait_until(F pred, double timeout_s) {
  double deadline = now_s() + timeout_s;
  for (;;) {
    if (pred()) return true;
    if (now_s() > deadline) return false;
    usleep(2000);
  }
}

std::string read_text_file(const std::string &path);  ///< "" if unreadable
bool write_text_file(const std::string &path, const std::string &data);
std::vector<std::string> split_lines(const std::string &text);  ///< without '\n'
std::vector<std::string> split_on(const std::string &text, char separator);  ///< an empty last piece dropped
std::vector<std::string> dir_listing(const std::string &dir);   ///< sorted, no . ..
bool pid_exists(pid_t pid);               ///< /proc/PID exists (zombies count)
char proc_state(pid_t pid);               ///< /proc/PID/stat state, 0 if gone
pid_t proc_ppid(pid_t pid);               ///< -1 if gone
std::vector<pid_t> task_tids(pid_t pid);  ///< /proc/PID/task, ascending
/// Polls (bounded) until proc_state(pid) == state.
bool wait_for_state(pid_t pid, char state, int timeout_s = 10);
/// True if pid has threads and each shows `state` in /proc/PID/task/TID/stat.
bool all_threads_in_state(pid_t pid, char state);
/// Each thread's state ("1234 T, 1235 S"), for failure messages.
std::string thread_states(pid_t pid);
/// TracerPid of pid (or of a thread: any tid works), -1 if unreadable.
int tracer_pid(pid_t pid);
/// Waits up to timeout_s for pid (our child) to exit and reaps it: true and
/// the wait status in *status if it did. Polls a pidfd, never a bare pid.
bool wait_child_exit(pid_t pid, int *status, int timeout_s);

/// The names above that the dump and restore suites use unqualified
/// (`using namespace test::process_names;` in target.h, restore_common.h).
namespace process_names {
using test::dir_listing;
using test::now_s;
using test::pid_exists;
using test::proc_ppid;
using test::proc_state;
using test::split_lines;
using test::task_tids;
using test::tracer_pid;
using test::wait_for_state;
using test::wait_until;
inline std::string read_file(const std::string &path) { return read_text_file(path); }
inline bool write_file(const std::string &path, const std::string &data) { return write_text_file(path, data); }
}  // namespace process_names

}  // namespace ckpt::test
