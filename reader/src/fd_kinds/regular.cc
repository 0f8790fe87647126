// Regular files: reopened by path at their position; an unlinked one is
// recreated from its stored bytes beside its old name and unlinked again.
#include "fd_kind.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

Status check_reopened_file(const CkptView &v, const FdRecord &f, const HereNowOptions &opt) {
  if (f.flags & kFdUnlinked) return {};  // recreated from the image
  auto type = static_cast<FdType>(f.type);
  std::string path(v.fds.str_or_empty(f.path));
  // The same file, and not shorter: a file that grew (a log) is fine, as
  // it is for CRIU; one that was replaced or truncated is not the file the
  // process had open (decision 24). With --reopen-changed-files a replaced
  // or truncated file (a rotated log) is opened as it is now (decision
  // 32); a missing one never is, unless the image stores it.
  if (gone_but_stored(v, path, f.ino)) return {};
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return make_error("fd %d: %s: %s", f.fd, path.c_str(), strerror(errno));
  const char *hint = type == FdType::Regular ? " (restore --reopen-changed-files opens it as it is now)" : "";
  if (f.ino && st.st_ino != f.ino && !(opt.reopen_changed_files && type == FdType::Regular))
    return make_error("fd %d: %s has been replaced since the dump (inode differs)%s", f.fd, path.c_str(), hint);
  if (type == FdType::Regular && u64(st.st_size) < f.size && !opt.reopen_changed_files)
    return make_error("fd %d: %s is shorter than at the dump (%lld bytes, was %llu)%s", f.fd, path.c_str(),
                      (long long)st.st_size, (unsigned long long)f.size, hint);
  return {};
}

// Under its old name when that is free, then unlinked: /proc shows "NAME
// (deleted)" again. An O_TMPFILE file (the fallback, when the name is
// taken) shows as "#INODE (deleted)".
static Expected<int> recreate_unlinked(const CkptView &v, const FdRecord &r, const std::string &path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  bool linked = fd >= 0;  // unlinked once reopened (fill_and_reopen)
  if (!linked) {
    std::string dir = path.substr(0, path.rfind('/') + 1);
    if (dir.empty()) dir = "/tmp/";
    fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  }
  if (fd < 0) return make_error("fd %d: cannot recreate unlinked %s: %s", r.fd, path.c_str(), strerror(errno));
  // The mode as it was, not as imgtool's umask left it.
  (void)fchmod(fd, r.mode & 07777);
  return fill_and_reopen(v, r, fd, path, linked);
}

// A file the program made with open(DIR, O_TMPFILE): made again the same
// way in the same folder, with the same flags, and kept as that fd. The
// kernel keeps __O_TMPFILE|O_DIRECTORY in the file's f_flags (F_GETFL,
// fdinfo show them), so reopening it without them would differ, and with
// them fails (ENOTDIR); and only an O_TMPFILE inode may be linked back
// into the tree (I_LINKABLE), which a created-then-unlinked file may not.
static Expected<int> recreate_tmpfile(const CkptView &v, const FdRecord &r, const std::string &path) {
  std::string dir = path.substr(0, path.rfind('/') + 1);
  if (dir.empty()) dir = "/tmp/";
  // O_APPEND after the refill (the refill writes at offsets).
  int fd = open(dir.c_str(), (reopen_flags(r) & ~(O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)) | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("fd %d: cannot make an O_TMPFILE file in %s again: %s", r.fd, dir.c_str(), strerror(errno));
  (void)fchmod(fd, r.mode & 07777);
  return fill_in_place(v, r, fd, path);
}

Expected<int> open_regular(FdOpenContext &c, const FdRecord &r) {
  std::string path(c.view.fds.str_or_empty(r.path));
  if ((r.flags & kFdUnlinked) && (int(r.open_flags) & O_TMPFILE) == O_TMPFILE) return recreate_tmpfile(c.view, r, path);
  if (r.flags & kFdUnlinked) return recreate_unlinked(c.view, r, path);
  auto opened = open_by_path(c.view, r);
  if (!opened) return opened.error();
  int fd = *opened;
  // An O_PATH fd has no file position (lseek fails with EBADF). A file
  // shorter than at the dump (restore --reopen-changed-files: a truncated
  // or rotated log) is continued at its end, not past it with a hole.
  u64 pos = r.pos;
  struct stat now {};
  if (fstat(fd, &now) == 0 && u64(now.st_size) < r.size) pos = std::min<u64>(pos, u64(now.st_size));
  if (!(r.open_flags & (O_APPEND | O_PATH)) && lseek(fd, static_cast<off_t>(pos), SEEK_SET) < 0) {
    int e = errno;
    close(fd);
    return make_error("fd %d: cannot seek %s to %llu: %s", r.fd, path.c_str(), (unsigned long long)r.pos, strerror(e));
  }
  if (r.open_flags & O_APPEND) lseek(fd, static_cast<off_t>(pos), SEEK_SET);
  return fd;
}

}  // namespace ckpt::reader
