// Regular files: reopened by path at restore; an unlinked one's bytes are
// captured (up to kMaxUnlinkedFileBytes) and it is recreated from them.
#include "fd_kind.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>

namespace ckpt::writer {

bool recognizes_regular(const FdProbe &p) {
  return !is_anon_inode(p.link) && S_ISREG(p.st.st_mode) && !recognizes_memfd(p);
}

img::Status capture_unlinked_content(pid_t pid, FdInfo &fi) {
  int fd = fi.record.fd;
  img::u64 size = fi.record.size;
  if (size > kMaxUnlinkedFileBytes)
    return img::make_error("pid %d fd %d: unlinked file is %llu bytes, more than the %llu byte limit", pid, fd,
                           (unsigned long long)size, (unsigned long long)kMaxUnlinkedFileBytes);
  // Opening the fd's magic link reaches the inode even though no name
  // does, and works whatever access mode the target opened it with.
  std::string link = fd_link(pid, fd);
  UniqueFd f(open(link.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!f.valid())
    return img::make_error("pid %d fd %d: open %s to copy the unlinked file: %s", pid, fd, link.c_str(),
                           strerror(errno));
  return read_file_bytes(f.get(), size, fi.content, fd_where(pid, fd) + ": " + link);
}

img::Status capture_regular(pid_t pid, FdInfo &fi) {
  // A linked file is still there to reopen; only an unlinked one's bytes
  // are gone with its name.
  if (!(fi.record.flags & img::kFdUnlinked)) return img::Status::ok();
  return capture_unlinked_content(pid, fi);
}

}  // namespace ckpt::writer
