// Directories: reopened by path at restore (getdents position is not kept).
#include "fd_kind.h"

namespace ckpt::writer {

bool recognizes_directory(const FdProbe &p) { return !is_anon_inode(p.link) && S_ISDIR(p.st.st_mode); }

}  // namespace ckpt::writer
