// The steps of one restore that both the plain restore (restore.cc) and
// the init of a new pid namespace (pidns.cc) run.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>
#include <sys/types.h>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

#include "lazy_pages.h"

namespace ckpt::reader {

/// The image, opened and decoded.
struct LoadedImage {
  std::string path;
  const img::ImageReader &image;
  const img::CkptView &view;
  const img::CoreView &core;
  const struct TreePlan *tree = nullptr;  ///< a tree image's plan (tree_plan.h), else null
  /// Called once every restored process has read its memory (restore -:
  /// drops the spooled stream, with image and tree; view stays usable).
  std::function<void()> memory_restored;
  bool hold_stopped = false;              ///< RestoreOptions::hold_stopped
  /// The root takes the restoring terminal after setsid (ChildChannels).
  bool take_terminal = false;
  /// Called with the root's pid once its restorer reported success, just
  /// before it runs (the terminal's termios and foreground group, the pid
  /// file); a failure there ends the restore with nothing run.
  std::function<img::Status(pid_t)> before_running = nullptr;
  /// Checks left to make while the root's child prepares (one process:
  /// check_files_and_vdso, DECISIONS 268); the child waits for them
  /// before anything it could not undo. Null: none left.
  std::function<img::Status()> checks_after_fork = nullptr;
};

/// What start_restored leaves running.
struct RestoredProcesses {
  pid_t root = 0;        ///< the restored root, our child (as we see its pid)
  LazyHelper lazy;       ///< --lazy: the helper serving its memory
  /// --lazy with a tree: one helper per further process.
  std::vector<std::unique_ptr<LazyHelper>> tree_lazy;
  /// Returning while the processes run: leave the helpers to them.
  void detach_helpers() {
    lazy.detach();
    for (auto &h : tree_lazy)
      if (h) h->detach();
  }
};

/// Creates the restored process as our child with its original pid, waits
/// for the restorer's verdict and hands it over: on success it runs. On
/// failure nothing is left running and the error is one line.
img::Status start_restored(const LoadedImage &loaded, bool lazy_restore, RestoredProcesses &out);

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGWINCH to `root` and
/// waits for our child `child`: its exit status, 128+N for signal N.
class ForegroundTerminal;
img::Expected<int> wait_in_foreground(pid_t root, pid_t child, ForegroundTerminal *terminal = nullptr);

}  // namespace ckpt::reader
