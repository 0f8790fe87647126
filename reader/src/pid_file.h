// restore's --pidfile: the file is opened (or created) before anything is
// restored and written once every process is restored, just before any
// runs (with --pidns, once the namespace's root runs; a failed write there
// ends the namespace), so that a pid file that cannot be opened or
// written fails the restore with nothing left running (CONTRACT).
// DECISIONS 274.
#pragma once

#include <string>
#include <sys/types.h>

#include <ckpt/img/expected.h>

namespace ckpt::reader {

class PidFile {
 public:
  PidFile() = default;
  PidFile(const PidFile &) = delete;
  PidFile &operator=(const PidFile &) = delete;
  PidFile(PidFile &&other) noexcept;
  PidFile &operator=(PidFile &&other) noexcept;
  /// Not written (a failed restore): a file we created goes again; a file
  /// that was there keeps its old contents.
  ~PidFile();

  /// Opens `path` for writing (nothing when empty), creating it if it is
  /// not there; a symbolic link is refused (O_NOFOLLOW), as before.
  static img::Expected<PidFile> open(const std::string &path);

  /// Replaces the contents with "PID\n" and closes the file.
  img::Status write(pid_t pid);

  /// In a forked child that never writes it: closes our copy of the fd
  /// (the file stays, for the parent to write or remove).
  void close_unwritten();

  bool wanted() const { return fd_ >= 0; }
  const std::string &path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool created_ = false;
};

}  // namespace ckpt::reader
