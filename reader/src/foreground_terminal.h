// The restoring terminal in a foreground restore, handled as a shell
// handles a job's (decisions 147-149): the restored program gets the
// termios it had, its controlling terminal and the foreground, is told to
// redraw (SIGWINCH); a stop of the program (Ctrl-Z) stops imgtool too, so
// that the calling shell's `fg` works; when it exits the terminal gets our
// termios and foreground back.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>

#include <ckpt/img/expected.h>
#include <ckpt/img/model.h>
#include <ckpt/img/tty_abi.h>

namespace ckpt::reader {

/// In the restored root, after setsid: its reconnected controlling
/// terminal (the restoring one) becomes its controlling terminal again.
img::Status take_controlling_terminal(const img::CkptView &view);

class ForegroundTerminal {
 public:
  /// Our terminal (the first of fds 0..2 that is one, and our controlling
  /// terminal) and its termios, when the image's root had a controlling
  /// terminal its fds were marked to be reconnected to; else inactive.
  /// Call before the restored process is created.
  static ForegroundTerminal for_image(const img::CkptView &root_view);

  bool active() const { return fd_ >= 0; }
  /// The restored root leads its session and we lead the terminal's: it
  /// takes the terminal as its controlling terminal (TIOCSCTTY).
  bool root_takes_terminal() const { return root_takes_; }
  /// A warning for the user when the terminal cannot become the restored
  /// session's controlling terminal, or "".
  const std::string &warning() const { return warning_; }

  /// Before the restored root runs (it exists, in its group): the
  /// program's termios on the terminal, its group in the foreground.
  void give(pid_t root);
  /// Once it runs: SIGWINCH, so that it redraws on this terminal.
  void tell_to_redraw();
  /// Waits for root like a shell waits for a foreground job; returns its
  /// exit status (128+N for death by signal N) with our terminal put back.
  img::Expected<int> wait(pid_t root);

  /// Our termios and foreground back (the program ended, or could not
  /// be handed over).
  void take_back();

 private:

  int fd_ = -1;
  img::KernelTermios2 ours_{};
  img::KernelTermios2 program_{};
  img::TtyState dumped_{};
  bool root_leads_session_ = false;
  bool root_takes_ = false;
  bool foreground_ = false;     ///< the root's group had the foreground at the dump
  pid_t program_pgrp_ = 0;
  pid_t root_ = 0;
  std::string warning_;
};

}  // namespace ckpt::reader
