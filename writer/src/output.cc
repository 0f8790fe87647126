#include "output.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/img/fault_point.h>

namespace ckpt::writer {

using img::make_error;

img::Expected<ImageOutput> ImageOutput::open(const std::string &path) {
  ImageOutput out;
  out.path_ = path;
  if (path == "-") {
    if (isatty(STDOUT_FILENO)) return make_error("refusing to write an image to a terminal; redirect standard output");
    out.is_stdout_ = true;
    return out;
  }
  CKPT_TRY(img::check_output_path(path));
  auto file = img::create_pending_file(path);
  if (!file) return file.error();
  out.file_ = file.take();
  return out;
}

ImageOutput::ImageOutput(ImageOutput &&o) noexcept
    : path_(std::move(o.path_)), file_(std::move(o.file_)), is_stdout_(o.is_stdout_), done_(o.done_) {
  o.file_.fd = -1;
  o.file_.temp.clear();
  o.done_ = true;
}

ImageOutput::~ImageOutput() {
  if (!done_) abandon();
}

void ImageOutput::abandon() {
  done_ = true;
  if (is_stdout_) return;
  img::discard_pending(file_);
}

img::Status ImageOutput::commit(bool durable) {
  if (is_stdout_) {
    done_ = true;
    // A pipe or socket cannot be synced (EINVAL); a file redirected to
    // standard output can and is.
    if (durable && fsync(STDOUT_FILENO) < 0 && errno != EINVAL && errno != EROFS)
      return make_error("cannot sync standard output: %s", strerror(errno));
    return {};
  }
  img::Status s = link_into_place(durable);
  if (!s) abandon();
  return s;
}

img::Status ImageOutput::link_into_place(bool durable) {
  if (durable && fsync(file_.fd) < 0) return make_error("cannot sync %s: %s", path_.c_str(), strerror(errno));
  CKPT_TRY(img::fault_point("dump-before-link"));
  CKPT_TRY(img::link_into_place(file_, path_));
  done_ = true;
  // A close error (NFS reports failed writeback here) means the image in
  // place may lack data: it is removed, not left looking complete.
  int fd = file_.fd;
  file_.fd = -1;
  if (close(fd) < 0) {
    int e = errno;
    unlink(path_.c_str());
    return make_error("cannot close %s: %s", path_.c_str(), strerror(e));
  }
  if (!durable) return {};
  int dfd = ::open(img::folder_of(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return {};
}

}  // namespace ckpt::writer
