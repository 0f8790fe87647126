// `imgtool restore -`: the image arrives on a pipe or socket, which can be
// read only once and not mapped, while restore reads the image several
// times (checks, then every process's restorer preads its pages). The
// stream is therefore spooled whole into an unnamed memfd first (decision
// 701), checked like any file, and dropped once memory is restored.
#pragma once

#include <string>

#include <ckpt/img/expected.h>

namespace ckpt::reader {

class StreamSpool {
 public:
  /// Reads `fd` to its end into a fresh memfd. Fails (one line) on a
  /// terminal, a read error, an empty stream or a full memory.
  static img::Expected<StreamSpool> from_fd(int fd);

  StreamSpool(StreamSpool &&other) noexcept : fd_(other.fd_), size_(other.size_) { other.fd_ = -1; }
  StreamSpool &operator=(StreamSpool &&) = delete;
  ~StreamSpool() { release(); }

  /// A path that opens the spool in this process and in every process
  /// forked from it that still has the fd: restore opens images by path
  /// (the restored processes' own restorers included).
  std::string path() const;
  unsigned long long size() const { return size_; }
  /// Closes our fd: once no process maps or holds it, its memory is freed.
  void release();

 private:
  StreamSpool(int fd, unsigned long long size) : fd_(fd), size_(size) {}
  int fd_ = -1;
  unsigned long long size_ = 0;
};

}  // namespace ckpt::reader
