// Kinds restore does not bring back yet (issue 13): recognised here so
// that dump refuses them by name (libimg/src/fd_kinds.cc), before anything
// is written or killed. A kind that learns to come back moves to a file
// of its own.
#include "fd_kind.h"

namespace ckpt::writer {

bool recognizes_block_device(const FdProbe &p) { return !is_anon_inode(p.link) && S_ISBLK(p.st.st_mode); }
// The kind of last resort (classify_fd tries it after every other): an
// anonymous inode of another name (pidfd, io_uring...) or an inode type
// none of the kinds above is.
bool recognizes_other(const FdProbe &) { return true; }

}  // namespace ckpt::writer
