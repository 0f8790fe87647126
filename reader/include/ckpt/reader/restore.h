// Restoring an image: the reader's public contract for `imgtool restore`.
#pragma once

#include <string>

#include <ckpt/img/expected.h>

namespace ckpt::reader {

struct RestoreOptions {
  std::string image;
  bool detach = false;        ///< return once the process runs
  std::string pidfile;        ///< with detach (or not): write the root's pid here
  bool lazy = false;          ///< map memory from the image instead of reading it
  /// Reopen by path the files of fds that were replaced or truncated since
  /// the dump (rotated logs) instead of refusing.
  bool reopen_changed_files = false;
  /// Restore into a new pid namespace (with its own /proc) under a small
  /// init, where the original pids are free; pidfile gets the root's pid
  /// as this namespace sees it.
  bool pidns = false;
  /// Leave every restored process in a job-control stop (SIGSTOP) before
  /// its first instruction, as a dump of a stopped process comes back:
  /// `restore --gdb` attaches a debugger there. Implies nothing about
  /// detach; the caller decides.
  bool hold_stopped = false;
  /// Restore an image another user could have written even when it would
  /// give them more than they hold (docs/SECURITY.md; image_trust.h).
  bool trust_image = false;
};

/// Checks the image and this machine, then brings the process back with its
/// original pid and tids; the image "super-execs" into a child of the
/// caller. In the foreground, waits for it and returns the exit status to
/// exit with (128+N for death by signal N); with detach, returns 0 once it
/// runs. Nothing is started when a check fails.
img::Expected<int> restore_image(const RestoreOptions &options);

}  // namespace ckpt::reader
