// Freezing a whole process tree: the root and all its descendants, each
// with every thread (FrozenProcess), found top-down so that no process can
// fork once its children have been read; zombies are recorded, never reaped
// (we are not their parent).
#pragma once

#include <atomic>
#include <memory>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>

#include "freeze.h"
#include "procfs.h"

namespace ckpt::writer {

struct TreeMember {
  pid_t pid = 0;
  pid_t ppid = 0;
  pid_t creator_tid = 0;       ///< the parent's thread that forked it (0 for the root)
  bool zombie = false;
  ProcStat stat;               ///< a zombie's final state (exit_code); for live ones as found
  std::unique_ptr<FrozenProcess> frozen;  ///< null for a zombie
};

class FrozenTree {
 public:
  /// Freezes root and every descendant (re-reading children until no new
  /// one appears). The process running this code and its descendants are
  /// never part of the tree (DECISIONS.md 73). On failure every process frozen
  /// so far is let go as it was and the error names the process.
  static img::Expected<FrozenTree> freeze(pid_t root, const std::atomic<bool> *cancel = nullptr);

  /// Root first, parents before their children.
  const std::vector<TreeMember> &members() const { return members_; }
  /// Lets every process go as it was found (children first).
  img::Status release();
  /// SIGKILLs every live process of the tree; then detaches.
  img::Status kill();

 private:
  img::Status add_children_of(size_t index, const std::atomic<bool> *cancel);
  std::vector<TreeMember> members_;
};

}  // namespace ckpt::writer
