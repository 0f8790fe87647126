#include <ckpt/img/pending_file.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::img {

std::string folder_of(const std::string &path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

static std::string base_of(const std::string &path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// `DIR/.BASE.tmp-XXXXXXXX`: the pattern libckpt's cleanup of a killed
// helper looks for (DECISIONS 72).
static std::string temp_name(const std::string &path, std::random_device &rd) {
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", rd());
  return folder_of(path) + "/." + base_of(path) + ".tmp-" + suffix;
}

Status check_output_path(const std::string &path) {
  if (path.empty()) return make_error("empty output path");
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) return make_error("%s is a symbolic link; refusing to write through it", path.c_str());
    if (S_ISDIR(st.st_mode)) return make_error("%s is a directory", path.c_str());
    if (!S_ISREG(st.st_mode)) return make_error("%s exists and is not a regular file", path.c_str());
  } else if (errno != ENOENT) {
    return make_error("%s: %s", path.c_str(), strerror(errno));
  }
  return {};
}

Expected<PendingFile> create_pending_file(const std::string &path, bool readable) {
  std::string dir = folder_of(path);
  int access = readable ? O_RDWR : O_WRONLY;
  PendingFile f;
  // O_TMPFILE: an inode in `dir`'s filesystem with no directory entry; the
  // kernel frees it when the last fd closes, including when the process is
  // killed. Filesystems without it answer EOPNOTSUPP (older kernels EISDIR
  // or EINVAL: the flag includes O_DIRECTORY).
  f.fd = ::open(dir.c_str(), O_TMPFILE | access | O_CLOEXEC, 0600);
  if (f.fd >= 0) return f;
  if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
    return make_error("cannot create a file in %s: %s", dir.c_str(), strerror(errno));
  std::random_device rd;
  for (int attempt = 0; attempt < 100; attempt++) {
    std::string temp = temp_name(path, rd);
    f.fd = ::open(temp.c_str(), access | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f.fd >= 0) {
      f.temp = temp;
      return f;
    }
    if (errno != EEXIST) return make_error("cannot create a file in %s: %s", dir.c_str(), strerror(errno));
  }
  return make_error("cannot create a temporary file in %s", dir.c_str());
}

// Links the unnamed file `fd` as `name`; fails with EEXIST if the name is
// taken (linkat never replaces). The /proc/self/fd form with
// AT_SYMLINK_FOLLOW is what open(2) documents for unprivileged callers;
// AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH and serves without /proc.
static int link_unnamed(int fd, const std::string &name) {
  char proc[64];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (linkat(AT_FDCWD, proc, AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) == 0) return 0;
  if (errno != ENOENT) return -1;
  return linkat(fd, "", AT_FDCWD, name.c_str(), AT_EMPTY_PATH);
}

Status link_into_place(PendingFile &f, const std::string &path) {
  // The destination may have become a directory meanwhile.
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return make_error("%s is a directory", path.c_str());
  if (!f.temp.empty()) {
    // rename() replaces a symlink itself, never what it points to.
    if (rename(f.temp.c_str(), path.c_str()) < 0)
      return make_error("cannot rename the image to %s: %s", path.c_str(), strerror(errno));
    f.temp.clear();
    return {};
  }
  if (link_unnamed(f.fd, path) == 0) return {};
  if (errno != EEXIST) return make_error("cannot link the image as %s: %s", path.c_str(), strerror(errno));
  // Replacing an existing file (or symlink): linkat cannot, so the file
  // gets a temporary name first and is renamed over the destination, which
  // stays whole (old or new) throughout.
  std::random_device rd;
  for (int attempt = 0; attempt < 100; attempt++) {
    std::string temp = temp_name(path, rd);
    if (link_unnamed(f.fd, temp) < 0) {
      if (errno == EEXIST) continue;
      return make_error("cannot link the image in %s: %s", folder_of(path).c_str(), strerror(errno));
    }
    if (rename(temp.c_str(), path.c_str()) < 0) {
      int e = errno;
      unlink(temp.c_str());
      return make_error("cannot rename the image to %s: %s", path.c_str(), strerror(e));
    }
    return {};
  }
  return make_error("cannot create a temporary name in %s", folder_of(path).c_str());
}

void discard_pending(PendingFile &f) {
  if (f.fd >= 0) ::close(f.fd);
  f.fd = -1;
  if (!f.temp.empty()) unlink(f.temp.c_str());
  f.temp.clear();
}

}  // namespace ckpt::img
