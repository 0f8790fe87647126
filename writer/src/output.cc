#include "output.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::writer {

using img::make_error;

img::Expected<ImageOutput> ImageOutput::open(const std::string &path) {
  ImageOutput out;
  out.path_ = path;
  if (path == "-") {
    if (isatty(STDOUT_FILENO)) return make_error("refusing to write an image to a terminal; redirect standard output");
    out.fd_ = STDOUT_FILENO;
    out.is_stdout_ = true;
    return out;
  }
  if (path.empty()) return make_error("empty output path");
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (S_ISLNK(st.st_mode)) return make_error("%s is a symbolic link; refusing to write through it", path.c_str());
    if (S_ISDIR(st.st_mode)) return make_error("%s is a directory", path.c_str());
    if (!S_ISREG(st.st_mode)) return make_error("%s exists and is not a regular file", path.c_str());
  } else if (errno != ENOENT) {
    return make_error("%s: %s", path.c_str(), strerror(errno));
  }
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::random_device rd;
  for (int attempt = 0; attempt < 100; attempt++) {
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "%08x", rd());
    std::string temp = dir + "/." + base + ".tmp-" + suffix;
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      out.fd_ = fd;
      out.temp_ = temp;
      return out;
    }
    if (errno != EEXIST) return make_error("cannot create a file in %s: %s", dir.c_str(), strerror(errno));
  }
  return make_error("cannot create a temporary file in %s", dir.c_str());
}

ImageOutput::ImageOutput(ImageOutput &&o) noexcept
    : path_(std::move(o.path_)), temp_(std::move(o.temp_)), fd_(o.fd_), is_stdout_(o.is_stdout_), done_(o.done_) {
  o.fd_ = -1;
  o.done_ = true;
}

ImageOutput::~ImageOutput() {
  if (!done_) abandon();
}

void ImageOutput::abandon() {
  done_ = true;
  if (is_stdout_) return;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  // The name goes even when the fd is already closed: commit() closes it
  // before the rename, and a failed rename must not leave the file.
  if (!temp_.empty()) unlink(temp_.c_str());
  temp_.clear();
}

img::Status ImageOutput::commit(bool durable) {
  if (is_stdout_) {
    done_ = true;
    // A pipe or socket cannot be synced (EINVAL); a file redirected to
    // standard output can and is.
    if (durable && fsync(fd_) < 0 && errno != EINVAL && errno != EROFS)
      return make_error("cannot sync standard output: %s", strerror(errno));
    return {};
  }
  img::Status s = rename_into_place(durable);
  if (!s) abandon();
  return s;
}

img::Status ImageOutput::rename_into_place(bool durable) {
  if (durable && fsync(fd_) < 0) return make_error("cannot sync %s: %s", temp_.c_str(), strerror(errno));
  int fd = fd_;
  fd_ = -1;
  if (close(fd) < 0) return make_error("cannot close %s: %s", temp_.c_str(), strerror(errno));
  // The destination may have become a symlink or a directory meanwhile;
  // rename() replaces a symlink itself, never what it points to.
  struct stat st;
  if (lstat(path_.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return make_error("%s is a directory", path_.c_str());
  if (rename(temp_.c_str(), path_.c_str()) < 0)
    return make_error("cannot rename the image to %s: %s", path_.c_str(), strerror(errno));
  done_ = true;
  temp_.clear();
  if (!durable) return {};
  size_t slash = path_.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return {};
}

}  // namespace ckpt::writer
