// memfds: recreated by memfd_create() under their name from their stored
// bytes (libimg refuses an image that lacks them).
#include "fd_kind.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

Expected<int> open_memfd(FdOpenContext &c, const FdRecord &r) {
  std::string path(c.view.fds.str_or_empty(r.path));
  std::string name = path.rfind("/memfd:", 0) == 0 ? path.substr(7) : "restored";
  if (name.size() > 10 && name.compare(name.size() - 10, 10, " (deleted)") == 0) name.resize(name.size() - 10);
  int fd = static_cast<int>(syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC));
  if (fd < 0) return make_error("fd %d: cannot recreate unlinked %s: %s", r.fd, path.c_str(), strerror(errno));
  return fill_and_reopen(c.view, r, fd, path);
}

}  // namespace ckpt::reader
