// Where an image goes: a file beside the destination that gets its name
// only once complete (and, when asked, synced): unnamed (O_TMPFILE) where
// the filesystem allows, so a killed dump leaves nothing; or standard
// output.
#pragma once

#include <string>

#include <ckpt/img/expected.h>
#include <ckpt/img/pending_file.h>

namespace ckpt::writer {

class ImageOutput {
 public:
  /// Checks the destination (not a symlink, not a directory, its folder
  /// writable) and creates the pending file (img::create_pending_file: 0600,
  /// unnamed, or named with O_EXCL|O_NOFOLLOW).
  static img::Expected<ImageOutput> open(const std::string &path);
  ImageOutput(ImageOutput &&o) noexcept;
  ImageOutput &operator=(ImageOutput &&) = delete;
  /// Removes the temporary file unless commit() succeeded.
  ~ImageOutput();

  int fd() const { return is_stdout_ ? 1 : file_.fd; }
  /// Gives the complete image the destination's name (link or rename). With `durable`
  /// (dump --sync) fsync first and fsync the folder after, so the image
  /// survives a crash of the machine; without it the image is complete
  /// and in place but its data may still be in the page cache, as after
  /// gcore or criu dump. On failure the temporary file is removed too.
  img::Status commit(bool durable);
  /// Discards the file now (closes it; removes a temporary name).
  void abandon();

 private:
  ImageOutput() = default;
  img::Status link_into_place(bool durable);
  std::string path_;
  img::PendingFile file_;
  bool is_stdout_ = false;
  bool done_ = false;
};

}  // namespace ckpt::writer
