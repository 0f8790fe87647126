// The writer's fd kind table (fd_kind.h).
#include "fd_kind.h"

namespace ckpt::writer {

namespace {

using img::FdType;

constexpr std::array<WriterFdKind, img::kFdTypeCount> kWriterFdKinds = {{
    {FdType::Regular, recognizes_regular, capture_regular, false},
    {FdType::Directory, recognizes_directory, capture_nothing, false},
    {FdType::PipeRead, recognizes_pipe_read, capture_nothing, true},
    {FdType::PipeWrite, recognizes_pipe_write, capture_nothing, true},
    {FdType::Fifo, recognizes_fifo, capture_nothing, true},
    {FdType::CharDevice, recognizes_char_device, capture_char_device, false},
    {FdType::BlockDevice, recognizes_block_device, capture_nothing, false},
    {FdType::Socket, recognizes_socket, capture_socket, false},
    {FdType::EventFd, recognizes_eventfd, capture_eventfd, false},
    {FdType::SignalFd, recognizes_signalfd, capture_signalfd, false},
    {FdType::TimerFd, recognizes_timerfd, capture_timerfd, false},
    {FdType::Epoll, recognizes_epoll, capture_epoll, false},
    {FdType::Inotify, recognizes_inotify, capture_inotify, false},
    {FdType::MemFd, recognizes_memfd, capture_memfd, false},
    {FdType::Other, recognizes_other, capture_nothing, false},
}};
static_assert(img::covers_every_fd_type(kWriterFdKinds),
              "every FdType needs its writer entry (recognizes, capture): writer/src/fd_kinds/");

}  // namespace

const WriterFdKind &writer_fd_kind(img::FdType type) {
  auto i = static_cast<img::u32>(type);
  return kWriterFdKinds[i < kWriterFdKinds.size() ? i : static_cast<img::u32>(FdType::Other)];
}

img::FdType classify_fd(const FdProbe &probe) {
  for (const WriterFdKind &k : kWriterFdKinds)
    if (k.type != FdType::Other && k.recognizes(probe)) return k.type;
  return FdType::Other;
}

std::string fd_where(pid_t pid, int fd) { return "pid " + std::to_string(pid) + " fd " + std::to_string(fd); }

std::string fd_link(pid_t pid, int fd) { return "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd); }

std::string fdinfo_path(pid_t pid, int fd) {
  return "/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd);
}

std::optional<std::string> fdinfo_value(std::string_view text, std::string_view key) {
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    std::string_view line = text.substr(at, nl == std::string_view::npos ? std::string_view::npos : nl - at);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      std::string_view v = line.substr(key.size() + 1);
      size_t b = v.find_first_not_of(" \t");
      return std::string(b == std::string_view::npos ? std::string_view() : v.substr(b));
    }
    if (nl == std::string_view::npos) break;
    at = nl + 1;
  }
  return std::nullopt;
}

img::Status capture_nothing(pid_t, FdInfo &) { return img::Status::ok(); }

}  // namespace ckpt::writer
