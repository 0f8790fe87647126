// Planning the restore of a process tree (FORMAT.md §12.1): every process
// of the image with its place in the tree, and the objects that several
// processes share (open file descriptions by file_id, pipes by pipe_id,
// shared anonymous memory by inode), each to be made once, in the root,
// before any process forks, and inherited.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>
#include <tuple>
#include <vector>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

namespace ckpt::reader {

/// One process of the tree.
struct TreeProcess {
  pid_t pid = 0, ppid = 0, pgid = 0, sid = 0;
  bool zombie = false;
  int wait_status = 0;            ///< a zombie's: what waitpid() reports
  int exit_signal = 0;            ///< the signal its parent gets when it exits
  std::vector<size_t> children;   ///< indices into TreePlan::processes, in image order
  // A live process's own core (none for a zombie).
  std::unique_ptr<img::ImageReader> embedded;  ///< its embedded core (none for the root)
  const img::ImageReader *image = nullptr;     ///< the root's image or *embedded
  std::optional<img::CkptView> view;
  std::optional<img::CoreView> core;
};

/// An object several processes share, made once in the root.
struct SharedKey {
  enum Kind { File, Pipe, Memory, UnixPair, PtyPair } kind;
  img::u64 a, b, c;               ///< File: file_id; Pipe: pipe_id; Memory: vma kind, dev, ino;
                                  ///< UnixPair: the two sockets' inodes, lower first; PtyPair: the pty number
  auto operator<=>(const SharedKey &) const = default;
};

/// Where the first use of a shared object is described.
struct SharedUse {
  size_t process = 0;             ///< index of the process whose record made it
  size_t record = 0;              ///< FdRecord (File, Pipe, UnixPair) or VmaRecord (Memory) index
};

struct TreePlan {
  std::string path;
  const img::ImageReader *root_image = nullptr;
  std::vector<TreeProcess> processes;     ///< [0] is the root; parents before children
  std::map<SharedKey, SharedUse> shared;  ///< objects used by more than one process
  size_t live_count() const;
};

/// Reads the Tree of `root` and decodes every embedded core; the root's own
/// view and core are copied in. Fails naming the process.
img::Expected<TreePlan> plan_tree(const std::string &path, const img::ImageReader &root, const img::CkptView &root_view,
                                  const img::CoreView &root_core);

}  // namespace ckpt::reader
