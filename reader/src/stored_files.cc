#include "stored_files.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

const StoredFileRecord *find_stored_file(const CkptView &v, std::string_view path, u64 ino) {
  for (const StoredFileRecord &f : v.stored_files.records)
    if (f.ino == ino && v.stored_files.str_or_empty(f.path) == path) return &f;
  return nullptr;
}

static Status recreate(const CkptView &v, const StoredFileRecord &f, const std::string &path) {
  auto content = v.stored_files.blob(f.content);
  if (!content) return content.error();
  // O_EXCL|O_NOFOLLOW: only ever a new file of our own, never through a
  // symlink someone planted at the path since the check.
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("cannot recreate the stored file %s: %s", path.c_str(), strerror(errno));
  Status s = Status::ok();
  size_t done = 0;
  while (s && done < content->size()) {
    ssize_t n = write(fd, content->data() + done, content->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) s = make_error("cannot recreate the stored file %s: %s", path.c_str(), n < 0 ? strerror(errno) : "short write");
    else done += size_t(n);
  }
  // The owner first: chown clears set-id bits, which fchmod then sets.
  uid_t uid = f.uid;
  gid_t gid = f.gid;
  if (s && (geteuid() == 0 || uid != geteuid()) && fchown(fd, uid, gid) < 0)
    s = make_error("cannot give the stored file %s back to uid %u: %s", path.c_str(), f.uid, strerror(errno));
  if (s && fchmod(fd, f.mode & 07777) < 0)
    s = make_error("cannot set the mode of the stored file %s: %s", path.c_str(), strerror(errno));
  struct timespec times[2] = {{0, UTIME_OMIT},
                              {static_cast<time_t>(f.mtime_ns / 1000000000), static_cast<long>(f.mtime_ns % 1000000000)}};
  if (s && futimens(fd, times) < 0)
    s = make_error("cannot set the mtime of the stored file %s: %s", path.c_str(), strerror(errno));
  close(fd);
  if (!s) unlink(path.c_str());
  return s;
}

Expected<std::vector<std::string>> recreate_missing_files(const CkptView &v) {
  std::vector<std::string> created;
  for (const StoredFileRecord &f : v.stored_files.records) {
    std::string path(v.stored_files.str_or_empty(f.path));
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 || errno != ENOENT) continue;  // preflight judged what is there
    Status s = recreate(v, f, path);
    if (!s) {
      remove_files(created);
      return s.error();
    }
    created.push_back(path);
  }
  return created;
}

void remove_files(const std::vector<std::string> &paths) {
  for (const std::string &p : paths) unlink(p.c_str());
}

}  // namespace ckpt::reader
