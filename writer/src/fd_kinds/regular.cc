// Regular files: reopened by path at restore; an unlinked one's bytes are
// captured (up to kMaxUnlinkedFileBytes) and it is recreated from them.
#include "fd_kind.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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
  CKPT_TRY(read_file_bytes(f.get(), size, fi.content, fd_where(pid, fd) + ": " + link));
  fi.state = recreated_file_state_of(f.get(), size);
  return img::Status::ok();
}

// Where the file's data lies (SEEK_DATA/SEEK_HOLE; a filesystem without
// them reports one extent to the end) and who owns it: restore makes a
// new inode, which would otherwise be root's and have its holes filled.
std::vector<img::u8> recreated_file_state_of(int fd, img::u64 size) {
  struct stat st {};
  (void)fstat(fd, &st);
  img::RecreatedFileState fixed{};
  fixed.uid = st.st_uid;
  fixed.gid = st.st_gid;
  fixed.blocks = img::u64(st.st_blocks);
  std::vector<img::DataExtent> extents;
  off_t at = 0;
  while (img::u64(at) < size) {
    off_t data = lseek(fd, at, SEEK_DATA);
    if (data < 0) {
      // ENXIO: nothing but a hole from `at` to the end.
      if (errno != ENXIO) extents = {{0, size}};
      break;
    }
    if (img::u64(data) >= size) break;
    off_t hole = lseek(fd, data, SEEK_HOLE);
    img::u64 end = hole < 0 ? size : std::min<img::u64>(img::u64(hole), size);
    extents.push_back({img::u64(data), end - img::u64(data)});
    at = off_t(end);
  }
  return img::recreated_file_state_bytes(fixed, extents);
}

img::Status capture_regular(pid_t pid, FdInfo &fi) {
  // A linked file is still there to reopen; only an unlinked one's bytes
  // are gone with its name.
  if (!(fi.record.flags & img::kFdUnlinked)) return img::Status::ok();
  return capture_unlinked_content(pid, fi);
}

}  // namespace ckpt::writer
