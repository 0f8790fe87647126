// inotify fds: a new instance with every watch added again by path, in wd
// order, so that each gets the watch descriptor the program holds.
#include "fd_kind.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

namespace {

// More placeholder watches than this to reach one wd is not worth the
// time; such an image is refused at restore.
constexpr int kMaxWdGap = 1 << 20;

}  // namespace

Status check_inotify(const CkptView &v, const FdRecord &r, const HereNowOptions &) {
  auto watches = inotify_watches(v.fds, r);
  if (!watches) return watches.error();
  for (const InotifyWatchEntry &w : *watches) {
    struct stat st {};
    if (lstat(w.path.c_str(), &st) != 0)
      return make_error("fd %d: inotify watch %d: %s: %s", r.fd, w.watch.wd, w.path.c_str(), strerror(errno));
    if (st.st_ino != w.watch.ino || st.st_dev != w.watch.dev)
      return make_error("fd %d: inotify watch %d: %s is another file now (inode %llu, was %llu)", r.fd, w.watch.wd,
                        w.path.c_str(), (unsigned long long)st.st_ino, (unsigned long long)w.watch.ino);
  }
  return {};
}

Expected<int> open_inotify(FdOpenContext &c, const FdRecord &r) {
  auto watches = inotify_watches(c.view.fds, r);
  if (!watches) return watches.error();
  int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return make_error("fd %d: inotify_init1: %s", r.fd, strerror(errno));
  auto fail = [&](Error e) -> Expected<int> {
    close(fd);
    return e;
  };
  // fs/notify/inotify/inotify_user.c allocates wds with idr_alloc_cyclic
  // from 1: each new watch takes the number after the last one given out,
  // even when smaller ones are free again. A gap (a watch the program
  // removed) is reproduced by a placeholder watch, on a memfd of ours,
  // added and removed at once.
  int placeholder = -1;
  int next = 1;
  for (const InotifyWatchEntry &w : *watches) {
    if (w.watch.wd < next || w.watch.wd - next > kMaxWdGap) {
      if (placeholder >= 0) close(placeholder);
      return fail(make_error("fd %d: inotify watch %d cannot be given its number again", r.fd, w.watch.wd));
    }
    while (next < w.watch.wd) {
      if (placeholder < 0) placeholder = memfd_create("ckpt-inotify-gap", MFD_CLOEXEC);
      std::string self = "/proc/self/fd/" + std::to_string(placeholder);
      int got = placeholder < 0 ? -1 : inotify_add_watch(fd, self.c_str(), IN_ATTRIB);
      if (got < 0 || inotify_rm_watch(fd, got) != 0) {
        int e = errno;
        if (placeholder >= 0) close(placeholder);
        return fail(make_error("fd %d: placeholder inotify watch for wd %d: %s", r.fd, next, strerror(e)));
      }
      next = got + 1;
    }
    // IN_DONT_FOLLOW: the stored path names the watched inode itself (a
    // symlink watched as such stays so).
    int got = inotify_add_watch(fd, w.path.c_str(), w.watch.mask | IN_DONT_FOLLOW);
    if (got < 0) {
      int e = errno;
      if (placeholder >= 0) close(placeholder);
      return fail(make_error("fd %d: inotify_add_watch(%s): %s", r.fd, w.path.c_str(), strerror(e)));
    }
    if (got != w.watch.wd) {
      if (placeholder >= 0) close(placeholder);
      return fail(make_error("fd %d: inotify watch on %s came back as wd %d, not %d", r.fd, w.path.c_str(), got,
                             w.watch.wd));
    }
    next = got + 1;
  }
  if (placeholder >= 0) close(placeholder);
  // Each removed placeholder queued an IN_IGNORED event the program must
  // not see (and any event on a watched file since: queued events are not
  // restored, decision 97). Drain them.
  char buf[4096];
  while (read(fd, buf, sizeof buf) > 0) {
  }
  return with_status_flags(fd, r, "inotify");
}

}  // namespace ckpt::reader
