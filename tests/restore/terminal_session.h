// A program run on a pty of its own, as in a terminal emulator's pane
// (the terminal tests, tty_test.cc): the child leads a new session with
// the pty's slave as its controlling terminal on fds 0 and 1 (stderr
// appends to a file), the test holds the master.
#pragma once

#include <string>
#include <sys/types.h>
#include <termios.h>
#include <vector>

namespace ckpt::restoretest {

class TerminalSession {
 public:
  /// Starts argv on a new pty of rows x cols; stderr appends to err_path.
  TerminalSession(const std::vector<std::string> &argv, unsigned rows, unsigned cols, const std::string &err_path);
  ~TerminalSession();
  TerminalSession(const TerminalSession &) = delete;
  TerminalSession &operator=(const TerminalSession &) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  /// Reads the master until `needle` has been output (true) or
  /// timeout_s passed / the pty closed (false).
  bool read_until(const std::string &needle, int timeout_s);
  /// Everything the terminal showed so far.
  const std::string &output() const { return output_; }
  /// Types bytes at the terminal.
  void type(const std::string &bytes);
  /// The slave's termios now (a master's termios ioctls act on its slave).
  struct termios termios() const;
  /// Waits for the child (draining the master meanwhile); its exit code,
  /// 128+N for a signal, -1 on timeout (the child is then killed).
  int wait_exit(int timeout_s);

 private:
  void drain(int timeout_ms);
  int master_ = -1;
  pid_t pid_ = -1;
  std::string output_;
};

}  // namespace ckpt::restoretest
