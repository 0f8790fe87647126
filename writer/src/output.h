// Where an image goes: a temporary file beside the destination that is
// renamed over it only once complete (and, when asked, synced), or
// standard output.
#pragma once

#include <string>

#include <ckpt/img/expected.h>

namespace ckpt::writer {

class ImageOutput {
 public:
  /// Checks the destination (not a symlink, not a directory, its folder
  /// writable) and creates the temporary file (0600, O_EXCL|O_NOFOLLOW).
  static img::Expected<ImageOutput> open(const std::string &path);
  ImageOutput(ImageOutput &&o) noexcept;
  ImageOutput &operator=(ImageOutput &&) = delete;
  /// Removes the temporary file unless commit() succeeded.
  ~ImageOutput();

  int fd() const { return fd_; }
  /// Renames the complete image over the destination. With `durable`
  /// (dump --sync) fsync first and fsync the folder after, so the image
  /// survives a crash of the machine; without it the image is complete
  /// and in place but its data may still be in the page cache, as after
  /// gcore or criu dump. On failure the temporary file is removed too.
  img::Status commit(bool durable);
  /// Removes the temporary file now.
  void abandon();

 private:
  ImageOutput() = default;
  img::Status rename_into_place(bool durable);
  std::string path_, temp_;
  int fd_ = -1;
  bool is_stdout_ = false;
  bool done_ = false;
};

}  // namespace ckpt::writer
