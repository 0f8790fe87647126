// Reading an incremental image: its chain is merged first (decision 93),
// for restore and for imgtool's extract and gdb --pid alike.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include <ckpt/img/expected.h>
#include <ckpt/img/reader.h>

namespace ckpt::reader {

/// The image at `path` as restore reads it. A full image is itself; an
/// incremental one is its chain, opened and checked whole (every link's id
/// and checksums), merged into an unnamed temporary file beside it (or in
/// `merge_dir`; a memfd where that cannot be made) that lives as long as
/// this object and every process forked while it is open (restore never
/// execs: the fd is O_CLOEXEC and still reaches the restorers and lazy
/// helpers).
class RestoreSource {
 public:
  /// `base_dir`: where a relative parent path is resolved when `path` is
  /// not a real file's path (an image read from standard input).
  /// `merge_dir`: where the merged file is made ("": beside `path`).
  static img::Expected<RestoreSource> open(const std::string &path, const std::string &base_dir = "",
                                           const std::string &merge_dir = "");
  RestoreSource(RestoreSource &&o) noexcept : path_(std::move(o.path_)), fd_(o.fd_), image_(std::move(o.image_)) {
    o.fd_ = -1;
  }
  RestoreSource &operator=(RestoreSource &&) = delete;
  ~RestoreSource();

  /// `path` itself, or the merged file as /proc/self/fd/N.
  const std::string &path() const { return path_; }
  bool merged() const { return fd_ >= 0; }
  /// A full image as open() opened it to look for a parent (launcher
  /// checked by its headers only), so that restore does not map and parse
  /// it a second time; empty once taken, for a merged chain, or when it
  /// did not open (restore's checks then say why).
  std::optional<img::ImageReader> take_image() { return std::exchange(image_, std::nullopt); }

 private:
  RestoreSource(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
  std::optional<img::ImageReader> image_;
};

}  // namespace ckpt::reader
