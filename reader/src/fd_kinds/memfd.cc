// memfds: recreated by memfd_create() under their name from their stored
// bytes (libimg refuses an image that lacks them).
#include "fd_kind.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

Expected<int> open_memfd(FdOpenContext &c, const FdRecord &r) {
  std::string path(c.view.fds.str_or_empty(r.path));
  std::string name = path.rfind("/memfd:", 0) == 0 ? path.substr(7) : "restored";
  if (name.size() > 10 && name.compare(name.size() - 10, 10, " (deleted)") == 0) name.resize(name.size() - 10);
  // F_SEAL_SEAL alone is what a memfd made without MFD_ALLOW_SEALING has.
  bool sealing = (r.flags & kFdSeals) && r.seals != F_SEAL_SEAL;
  int fd = static_cast<int>(syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC | (sealing ? MFD_ALLOW_SEALING : 0)));
  if (fd < 0) return make_error("fd %d: cannot recreate unlinked %s: %s", r.fd, path.c_str(), strerror(errno));
  auto again = fill_and_reopen(c.view, r, fd, path);
  if (!again || !sealing) return again;
  // Sealed after its bytes are back (F_SEAL_WRITE forbids the refill);
  // another open file of the same memfd may have sealed it already.
  int now = fcntl(*again, F_GET_SEALS);
  if (now >= 0 && u32(now) != r.seals && fcntl(*again, F_ADD_SEALS, int(r.seals & ~u32(now))) < 0) {
    int e = errno;
    close(*again);
    return make_error("fd %d: cannot seal the recreated %s with 0x%x: %s", r.fd, path.c_str(), r.seals, strerror(e));
  }
  return again;
}

}  // namespace ckpt::reader
