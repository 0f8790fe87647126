// restore --pidfile (pid_file.h).
#include "pid_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <utility>

namespace ckpt::reader {

using namespace img;

PidFile::PidFile(PidFile &&other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_), created_(other.created_) {
  other.fd_ = -1;
  other.created_ = false;
}

PidFile &PidFile::operator=(PidFile &&other) noexcept {
  std::swap(path_, other.path_);
  std::swap(fd_, other.fd_);
  std::swap(created_, other.created_);
  return *this;
}

PidFile::~PidFile() {
  if (fd_ < 0) return;
  close(fd_);
  if (created_) unlink(path_.c_str());
}

void PidFile::close_unwritten() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  created_ = false;
}

Expected<PidFile> PidFile::open(const std::string &path) {
  PidFile f;
  if (path.empty()) return f;
  f.path_ = path;
  // O_EXCL first, to know whether a failed restore must remove the file
  // again; an existing file is opened as it is and truncated only when
  // the pid is written, so a failed restore leaves it unchanged.
  f.fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (f.fd_ >= 0) f.created_ = true;
  else if (errno == EEXIST) f.fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (f.fd_ < 0) {
    // O_NOFOLLOW on a symbolic link fails with ELOOP, whose text ("Too
    // many levels of symbolic links") misleads: say what it is.
    if (errno == ELOOP) return make_error("cannot write the pid file %s: it is a symbolic link", path.c_str());
    return make_error("cannot write the pid file %s: %s", path.c_str(), strerror(errno));
  }
  return f;
}

Status PidFile::write(pid_t pid) {
  if (fd_ < 0) return {};
  std::string text = std::to_string(pid) + "\n";
  bool ok = ftruncate(fd_, 0) == 0 && pwrite(fd_, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size());
  int e = errno;
  if (ok && close(fd_) < 0) ok = false, e = errno;
  else if (!ok) close(fd_);
  fd_ = -1;
  if (!ok) {
    if (created_) unlink(path_.c_str());
    return make_error("cannot write the pid file %s: %s", path_.c_str(), strerror(e));
  }
  return {};
}

}  // namespace ckpt::reader
