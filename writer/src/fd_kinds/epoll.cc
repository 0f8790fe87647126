// epoll: the interest list from /proc/PID/fdinfo ("tfd: N events: X
// data: Y"), each target checked with kcmp(KCMP_EPOLL_TFD) to still be the
// process's fd N: a target closed (or its number reused) while it stayed
// in the set cannot be added back by number, and dump refuses it
// (libimg/src/fd_kinds.cc). Restore adds the targets once every fd is in
// place (reader/src/fd_kinds/epoll.cc).
#include "fd_kind.h"

#include "../procfs.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <linux/kcmp.h>
#include <map>
#include <sys/syscall.h>
#include <vector>

namespace ckpt::writer {

using img::make_error;

bool recognizes_epoll(const FdProbe &p) { return is_anon_inode(p.link) && p.link.substr(11) == "[eventpoll]"; }

img::Status capture_epoll(pid_t pid, FdInfo &fi) {
  int fd = fi.record.fd;
  std::string path = "/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd);
  auto text = read_file(path);
  if (!text) return text.error().context(fd_where(pid, fd));
  std::vector<img::EpollTarget> targets;
  std::map<int, unsigned> seen;  // tfd -> entries with that number so far
  size_t at = 0;
  while (at < text->size()) {
    size_t nl = text->find('\n', at);
    std::string line = text->substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    at = nl == std::string::npos ? text->size() : nl + 1;
    if (line.compare(0, 4, "tfd:") != 0) continue;
    // fs/eventpoll.c ep_show_fdinfo: "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x".
    int tfd = -1;
    unsigned events = 0;
    unsigned long long data = 0;
    if (std::sscanf(line.c_str(), "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3)
      return make_error("pid %d fd %d: unparsable epoll target line \"%s\" in %s", pid, fd, line.c_str(),
                        path.c_str());
    img::EpollTarget t{};
    t.tfd = tfd;
    t.events = events;
    t.data = data;
    // kcmp's epoll slot names the toff-th target registered under number
    // tfd (a closed target and a new file on its number may both be in).
    struct kcmp_epoll_slot slot = {__u32(fd), __u32(tfd), seen[tfd]++};
    if (syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, tfd, &slot) == 0) t.flags |= img::kEpollTargetOpen;
    targets.push_back(t);
  }
  fi.state = img::epoll_state_bytes(targets);
  return img::Status::ok();
}

}  // namespace ckpt::writer
