// The restoring child's side: the process that turns into the image's.
// In order: the fd table (with our own fds moved out of its way), the
// objects behind the mappings, the process state, the restorer region,
// the jump. The parent waits for the restorer's verdict (verdict.h).
#pragma once

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

#include "process_setup.h"

namespace ckpt::reader {

/// One process of an image, as the child restoring it needs it.
struct ProcessImage {
  std::string path;                 ///< the image file (the restorer reads memory from it)
  const img::ImageReader &image;
  const img::CkptView &view;
  const img::CoreView &core;
};

/// Objects of a tree that several processes share, made once by the root
/// before it forks and inherited (tree_create.h): files and pipes by
/// file_id and pipe_id, shared anonymous memory by (VmaKind, dev, ino).
struct InheritedObjects {
  InheritedFds fds;
  std::map<std::tuple<img::u32, img::u64, img::u64>, int> memory;
  /// Every fd of ours in here, to survive restore_fds (which renumbers them).
  std::vector<int *> all_fds();
  void close_all();
};

/// What the child keeps of imgtool's: the verdict pipe, the lazy channel,
/// the restoring terminal, the objects inherited from a tree's root.
struct ChildChannels {
  int status_fd = -1;               ///< write end of the verdict pipe
  int lazy_sock = -1;               ///< --lazy: the channel to the helper, or -1
  int terminal[3] = {-1, -1, -1};   ///< the restoring terminal's fds 0..2 (or -1)
  InheritedObjects *inherited = nullptr;
  /// The root takes the restoring terminal as its controlling terminal
  /// after setsid (ForegroundTerminal::root_takes_terminal).
  bool take_terminal = false;
  /// Read end of the checks' pipe, or -1: imgtool writes one byte once
  /// its checks left for this time passed (and kills us if they failed);
  /// we wait for it before restoring the fds, the first step that others
  /// can see (DECISIONS 268).
  int checks_fd = -1;
};

/// Turns the calling process into the image's. Returns only on failure,
/// before the point of no return; the caller reports the error on
/// `channels.status_fd` (updated: it is moved out of the restored fds' way).
img::Status become_image(const ProcessImage &process, ChildChannels &channels);

/// become_image, then the report of its failure on the verdict pipe and
/// _exit(127). For the child right after clone.
/// In a child just created for the restore: it dies (SIGKILL) with the
/// thread that made it, `parent` (imgtool, or the restored parent in a
/// tree), until the handover; the restorer clears that once released
/// (restorer.c). A restore killed before its point of no return leaves
/// no half-made process behind.
void die_with_parent(pid_t parent);

[[noreturn]] void become_image_or_report(const ProcessImage &process, ChildChannels channels);

}  // namespace ckpt::reader
