// The fd kind registry, the writer's part: how each FdType is recognised
// from /proc/PID/fd/N and what of its state is captured beyond the common
// FdRecord fields. One file per kind (regular.cc, pipe.cc...); registry.cc
// is the table, which must have an entry for every FdType to build
// (img::covers_every_fd_type, libimg/fd_kinds.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/types.h>
#include <utility>
#include <unistd.h>

#include <ckpt/img/fd_kinds.h>
#include <ckpt/img/fd_states.h>

#include "../fds.h"

namespace ckpt::writer {

/// What is known of an fd before its kind is.
struct FdProbe {
  std::string_view link;       ///< readlink of /proc/PID/fd/N, as printed
  const struct stat &st;       ///< stat() through that link: the open inode
  img::u32 open_flags;         ///< fdinfo flags:, without O_CLOEXEC
};

struct WriterFdKind {
  img::FdType type;
  /// True when the fd is of this kind. At most one kind other than Other
  /// (the kind of last resort, tried after all others) says yes.
  bool (*recognizes)(const FdProbe &probe);
  /// Fills the kind's own state into fi (common fields, path and the
  /// kFdUnlinked mark are set already). pid's fd is fi.record.fd.
  img::Status (*capture)(pid_t pid, FdInfo &fi);
  /// Its fds share one pipe buffer, captured once per inode (PipeRecord).
  bool pipe_buffer;

  constexpr bool complete() const { return recognizes != nullptr && capture != nullptr; }
};

/// The writer's entry for `type` (a kind the writer itself classified).
const WriterFdKind &writer_fd_kind(img::FdType type);

/// The kind of the fd `probe` describes.
img::FdType classify_fd(const FdProbe &probe);

// ---- Shared by the kinds' files ----------------------------------------

/// Closes the fd it holds when it goes out of scope, so that every early
/// error return releases what was opened.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd &) = delete;
  UniqueFd &operator=(const UniqueFd &) = delete;
  UniqueFd(UniqueFd &&o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd &operator=(UniqueFd &&o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

/// "pid N fd M", the prefix of every per-fd error.
std::string fd_where(pid_t pid, int fd);
/// "/proc/PID/fd/N".
std::string fd_link(pid_t pid, int fd);
/// "/proc/PID/fdinfo/N".
std::string fdinfo_path(pid_t pid, int fd);
/// The value of fdinfo line "KEY:<blanks>VALUE" in text, or nullopt.
std::optional<std::string> fdinfo_value(std::string_view text, std::string_view key);
inline bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
/// An anonymous inode ("anon_inode:[eventfd]"): its st_mode says nothing
/// reliable about its kind, only the link text does.
inline bool is_anon_inode(std::string_view link) { return starts_with(link, "anon_inode:"); }

/// Copies the bytes of the unlinked regular file open at pid's fd into
/// fi.content (regular files and memfds), and its owner and data extents
/// into fi.state (img::RecreatedFileState).
img::Status capture_unlinked_content(pid_t pid, FdInfo &fi);

/// The RecreatedFileState bytes of the file open at fd, `size` bytes long.
std::vector<img::u8> recreated_file_state_of(int fd, img::u64 size);

/// Capacity and buffered bytes of the pipe/FIFO that fd in pid refers to,
/// without consuming them. `readable` says whether that fd can be read
/// from; if not, a new read end is opened through our copy's magic link.
img::Expected<PipeInfo> read_pipe_buffer(pid_t pid, int pidfd, int fd, bool readable);

// ---- The kinds' functions (one file each) ----------------------------------

bool recognizes_regular(const FdProbe &);
img::Status capture_regular(pid_t, FdInfo &);
bool recognizes_directory(const FdProbe &);
bool recognizes_pipe_read(const FdProbe &);
bool recognizes_pipe_write(const FdProbe &);
bool recognizes_fifo(const FdProbe &);
bool recognizes_char_device(const FdProbe &);
img::Status capture_char_device(pid_t, FdInfo &);
bool recognizes_memfd(const FdProbe &);
img::Status capture_memfd(pid_t, FdInfo &);
bool recognizes_eventfd(const FdProbe &);
img::Status capture_eventfd(pid_t, FdInfo &);
bool recognizes_timerfd(const FdProbe &);
img::Status capture_timerfd(pid_t, FdInfo &);
bool recognizes_signalfd(const FdProbe &);
img::Status capture_signalfd(pid_t, FdInfo &);
bool recognizes_inotify(const FdProbe &);
img::Status capture_inotify(pid_t, FdInfo &);
bool recognizes_socket(const FdProbe &);
img::Status capture_socket(pid_t, FdInfo &);
bool recognizes_epoll(const FdProbe &);
img::Status capture_epoll(pid_t, FdInfo &);
// Kinds restore refuses (refused.cc): recognised so the refusal can name them.
bool recognizes_block_device(const FdProbe &);
bool recognizes_other(const FdProbe &);
/// Nothing beyond the common fields.
img::Status capture_nothing(pid_t, FdInfo &);

}  // namespace ckpt::writer
