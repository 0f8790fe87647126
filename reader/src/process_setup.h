// Process state restored by ordinary syscalls in the child, before the
// restorer replaces its memory: fds, cwd, umask, limits, personality,
// signal dispositions, itimers and session. (Credentials are set by the
// restorer, last: see restorer.c.)
#pragma once

#include <vector>

#include <ckpt/img/model.h>

namespace ckpt::reader {

/// Recreates the fd table. `keep` are fds of ours that must survive (they
/// are moved above every restored fd and their new numbers written back).
/// `terminal` is the restoring terminal's fds 0..2 (or -1), which fds that
/// pointed at the dumping terminal get.
img::Status restore_fds(const img::CkptView &view, std::vector<int *> keep, const int terminal[3]);

/// cwd, umask, rlimits, personality, nice, comm, session/group leadership,
/// signal dispositions and itimers of the (only) task.
img::Status restore_process_state(const img::CkptView &view);

}  // namespace ckpt::reader
