// memfd_create() files: recreated as a memfd of the same name from their
// captured bytes.
#include "fd_kind.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>

namespace ckpt::writer {

bool recognizes_memfd(const FdProbe &p) {
  // memfd_create() files live on an internal shmem (or hugetlbfs) mount
  // and are born unlinked: "/memfd:NAME (deleted)".
  return !is_anon_inode(p.link) && S_ISREG(p.st.st_mode) && starts_with(p.link, "/memfd:") && p.st.st_nlink == 0;
}

img::Status capture_memfd(pid_t pid, FdInfo &fi) {
  // Seals belong to the inode: any open file of it reports them. A memfd
  // made without MFD_ALLOW_SEALING reports F_SEAL_SEAL alone.
  std::string link = fd_link(pid, fi.record.fd);
  UniqueFd f(open(link.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!f.valid())
    return img::make_error("pid %d fd %d: open %s to read its seals: %s", pid, fi.record.fd, link.c_str(), strerror(errno));
  int seals = fcntl(f.get(), F_GET_SEALS);
  if (seals < 0)
    return img::make_error("pid %d fd %d: F_GET_SEALS: %s", pid, fi.record.fd, strerror(errno));
  fi.record.seals = img::u32(seals);
  fi.record.flags |= img::kFdSeals;
  // Born unlinked, so always marked kFdUnlinked: its bytes are the file.
  if (!(fi.record.flags & img::kFdUnlinked)) return img::Status::ok();
  return capture_unlinked_content(pid, fi);
}

}  // namespace ckpt::writer
