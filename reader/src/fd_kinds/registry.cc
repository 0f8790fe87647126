// The reader's fd kind table (fd_kind.h) and what the kinds share.
#include "fd_kind.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/img/fd_states.h>

#include "../stored_files.h"

namespace ckpt::reader {

using namespace img;

namespace {

constexpr std::array<ReaderFdKind, kFdTypeCount> kReaderFdKinds = {{
    {FdType::Regular, check_reopened_file, open_regular},
    {FdType::Directory, check_reopened_file, open_directory},
    {FdType::PipeRead, check_nothing, open_pipe_end},
    {FdType::PipeWrite, check_nothing, open_pipe_end},
    {FdType::Fifo, check_fifo, open_fifo},
    {FdType::CharDevice, check_char_device, open_char_device, lock_pty_master},
    {FdType::BlockDevice, check_nothing, open_refused},
    {FdType::Socket, check_socket, open_socket, finish_socket},
    {FdType::EventFd, check_nothing, open_eventfd},
    {FdType::SignalFd, check_nothing, open_signalfd},
    {FdType::TimerFd, check_nothing, open_timerfd},
    {FdType::Epoll, check_nothing, open_epoll, add_epoll_targets},
    {FdType::Inotify, check_inotify, open_inotify},
    {FdType::MemFd, check_nothing, open_memfd},
    {FdType::Other, check_nothing, open_refused},
}};
static_assert(covers_every_fd_type(kReaderFdKinds),
              "every FdType needs its reader entry (check_here, open): reader/src/fd_kinds/");

}  // namespace

const ReaderFdKind *reader_fd_kind(u32 type) { return type < kReaderFdKinds.size() ? &kReaderFdKinds[type] : nullptr; }

int reopen_flags(const FdRecord &r) { return int(r.open_flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC); }

Expected<int> with_status_flags(int fd, const FdRecord &r, const char *kind) {
  if (fcntl(fd, F_SETFL, reopen_flags(r) & (O_NONBLOCK | O_ASYNC)) < 0) {
    int e = errno;
    close(fd);
    return make_error("fd %d: %s status flags: %s", r.fd, kind, strerror(e));
  }
  return fd;
}

Expected<int> open_by_path(const CkptView &v, const FdRecord &r) {
  std::string path(v.fds.str_or_empty(r.path));
  int fd = open(path.c_str(), reopen_flags(r) | O_CLOEXEC);
  if (fd < 0) return make_error("fd %d: cannot open %s: %s", r.fd, path.c_str(), strerror(errno));
  return fd;
}

Status write_all(int fd, std::span<const u8> data, const char *what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("cannot refill %s: %s", what, strerror(errno));
    done += n;
  }
  return {};
}

// Writes only the stored file's data extents, so its holes stay holes,
// then gives it its owner (before the mode: a chown clears set-user-ID),
// mode and modification time. An older writer's image has no state: all
// bytes are written, the file stays ours.
static Status refill_recreated_file(const CkptView &v, const FdRecord &r, int fd, const std::string &path) {
  auto content = v.fds.blob(r.content);
  if (!content) return content.error();
  if (!r.state.length) return write_all(fd, *content, path.c_str());
  auto state = recreated_file_state(v.fds, r);
  if (!state) return state.error();
  if (ftruncate(fd, static_cast<off_t>(content->size())) < 0)
    return make_error("cannot size %s to %zu bytes: %s", path.c_str(), content->size(), strerror(errno));
  for (const DataExtent &e : state->extents) {
    if (e.offset >= content->size()) break;
    u64 n = std::min<u64>(e.length, content->size() - e.offset);
    if (lseek(fd, static_cast<off_t>(e.offset), SEEK_SET) < 0)
      return make_error("cannot refill %s: %s", path.c_str(), strerror(errno));
    CKPT_TRY(write_all(fd, content->subspan(e.offset, n), path.c_str()));
  }
  if (fchown(fd, state->fixed.uid, state->fixed.gid) < 0)
    return make_error("cannot give the recreated %s to %u:%u: %s", path.c_str(), state->fixed.uid, state->fixed.gid,
                      strerror(errno));
  (void)fchmod(fd, r.mode & 07777);
  struct timespec times[2] = {{0, UTIME_OMIT},
                              {static_cast<time_t>(r.mtime_ns / 1000000000), static_cast<long>(r.mtime_ns % 1000000000)}};
  if (r.mtime_ns && futimens(fd, times) < 0)
    return make_error("cannot set the modification time of the recreated %s: %s", path.c_str(), strerror(errno));
  return {};
}

Expected<int> fill_and_reopen(const CkptView &v, const FdRecord &r, int fd, const std::string &path, bool linked) {
  // Reopened with the original access mode and status flags (O_APPEND,
  // O_NONBLOCK...), none of the creation's (O_TMPFILE would show in
  // F_GETFL). By its name while it has one, which it then loses at once
  // (before the refill: no other process can open it half-filled, and a
  // killed restore leaves no name behind): /proc/self/fd/N is a magic link,
  // which O_NOFOLLOW (shm_open sets it) refuses with ELOOP; through it the
  // flag is dropped.
  std::string name = linked ? path : "/proc/self/fd/" + std::to_string(fd);
  int flags = reopen_flags(r) | O_CLOEXEC;
  if (!linked) flags &= ~O_NOFOLLOW;
  int again = open(name.c_str(), flags);
  int e = errno;
  if (linked) unlink(path.c_str());
  Status filled = refill_recreated_file(v, r, fd, path);
  close(fd);
  if (again < 0) {
    if (!filled) return filled.error();
    return make_error("fd %d: cannot reopen the recreated %s: %s", r.fd, path.c_str(), strerror(e));
  }
  if (!filled) {
    close(again);
    return filled.error();
  }
  lseek(again, static_cast<off_t>(r.pos), SEEK_SET);
  return again;
}

Expected<int> fill_in_place(const CkptView &v, const FdRecord &r, int fd, const std::string &path) {
  if (Status s = refill_recreated_file(v, r, fd, path); !s) {
    close(fd);
    return s.error();
  }
  // The status flags F_SETFL may change (the file was made without them).
  if (fcntl(fd, F_SETFL, reopen_flags(r) & (O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)) < 0) {
    int e = errno;
    close(fd);
    return make_error("fd %d: status flags of the recreated %s: %s", r.fd, path.c_str(), strerror(e));
  }
  lseek(fd, static_cast<off_t>(r.pos), SEEK_SET);
  return fd;
}

bool gone_but_stored(const CkptView &v, const std::string &path, u64 ino) {
  struct stat st;
  return lstat(path.c_str(), &st) < 0 && errno == ENOENT && find_stored_file(v, path, ino);
}

Status check_nothing(const CkptView &, const FdRecord &, const HereNowOptions &) { return {}; }

}  // namespace ckpt::reader
