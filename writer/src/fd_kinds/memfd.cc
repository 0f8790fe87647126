// memfd_create() files: recreated as a memfd of the same name from their
// captured bytes.
#include "fd_kind.h"

namespace ckpt::writer {

bool recognizes_memfd(const FdProbe &p) {
  // memfd_create() files live on an internal shmem (or hugetlbfs) mount
  // and are born unlinked: "/memfd:NAME (deleted)".
  return !is_anon_inode(p.link) && S_ISREG(p.st.st_mode) && starts_with(p.link, "/memfd:") && p.st.st_nlink == 0;
}

img::Status capture_memfd(pid_t pid, FdInfo &fi) {
  // Born unlinked, so always marked kFdUnlinked: its bytes are the file.
  if (!(fi.record.flags & img::kFdUnlinked)) return img::Status::ok();
  return capture_unlinked_content(pid, fi);
}

}  // namespace ckpt::writer
