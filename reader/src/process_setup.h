// Process state restored by ordinary syscalls in the child, before the
// restorer replaces its memory: fds, cwd, umask, limits, personality,
// signal dispositions, itimers and session. (Credentials are set by the
// restorer, last: see restorer.c.)
#pragma once

#include <map>
#include <utility>
#include <vector>

#include <ckpt/img/model.h>

namespace ckpt::reader {

/// Recreates the fd table. `keep` are fds of ours that must survive (they
/// are moved above every restored fd and their new numbers written back).
/// `terminal` is the restoring terminal's fds 0..2 (or -1), which fds that
/// pointed at the dumping terminal get.
/// `inherited`: the files and pipes of a tree that several processes share,
/// made once by an ancestor (tree_create.h): fds on them are dups of these.
struct InheritedFds {
  std::map<img::u32, int> files;                   ///< file_id -> fd
  std::map<img::u32, std::pair<int, int>> pipes;   ///< pipe_id -> read end, write end
  std::map<img::u64, int> unix_sockets;           ///< AF_UNIX socket inode -> fd (pairs across processes)
  std::map<img::u32, std::pair<int, int>> pty_pairs;  ///< pty number -> master, slave or -1 (pairs across processes)
};
img::Status restore_fds(const img::CkptView &view, std::vector<int *> keep, const int terminal[3],
                        const InheritedFds *inherited = nullptr);

/// The open file description fd record r describes (not for pipes), opened
/// as restore_fds would.
img::Expected<int> open_file_description(const img::CkptView &view, const img::FdRecord &r, const int terminal[3]);

/// A new pipe with the buffered bytes and capacity PipeRecord `pipe_id`
/// of `view` gives it; both ends O_NONBLOCK.
img::Expected<std::pair<int, int>> recreate_pipe(const img::CkptView &view, img::u32 pipe_id);

/// cwd, umask, rlimits, personality, nice, comm, session/group leadership,
/// signal dispositions and itimers of the (only) task.
img::Status restore_process_state(const img::CkptView &view);

}  // namespace ckpt::reader
