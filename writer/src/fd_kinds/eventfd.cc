// eventfds: the counter and EFD_SEMAPHORE, read from /proc/PID/fdinfo
// ("eventfd-count:", "eventfd-semaphore:"), stored as an EventFdState;
// restore makes a new eventfd with them (reader/src/fd_kinds/eventfd.cc).
#include "fd_kind.h"

#include "../procfs.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ckpt::writer {

bool recognizes_eventfd(const FdProbe &p) { return is_anon_inode(p.link) && p.link.substr(11) == "[eventfd]"; }

img::Status capture_eventfd(pid_t pid, FdInfo &fi) {
  int fd = fi.record.fd;
  std::string path = fdinfo_path(pid, fd);
  auto text = read_file(path);
  if (!text) return text.error().context(fd_where(pid, fd));
  // fs/eventfd.c prints the counter as "%16llx": hexadecimal, padded with
  // spaces. "eventfd-semaphore:" exists since Linux 6.6; without it the
  // flag cannot be seen, and restoring without it would change how reads
  // count down: refuse.
  auto count = fdinfo_value(*text, "eventfd-count");
  auto semaphore = fdinfo_value(*text, "eventfd-semaphore");
  if (!count || !semaphore)
    return img::make_error("pid %d fd %d: eventfd: %s has no eventfd-count/eventfd-semaphore line (Linux 6.6 "
                           "shows both)",
                           pid, fd, path.c_str());
  char *end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(count->c_str(), &end, 16);
  if (errno || end == count->c_str())
    return img::make_error("pid %d fd %d: eventfd: unparsable eventfd-count \"%s\"", pid, fd, count->c_str());
  img::EventFdState state{};
  state.header = {sizeof state, 1};
  state.count = v;
  state.flags = *semaphore == "1" ? img::u32(img::kEventFdSemaphore) : 0u;
  fi.state = img::fd_state_bytes(state);
  return img::Status::ok();
}

}  // namespace ckpt::writer
