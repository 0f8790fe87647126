// Directories: reopened by path (checked like regular files: same inode).
#include "fd_kind.h"

namespace ckpt::reader {

img::Expected<int> open_directory(FdOpenContext &c, const img::FdRecord &r) { return open_by_path(c.view, r); }

}  // namespace ckpt::reader
