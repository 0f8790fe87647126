// Anonymous pipes and FIFOs: a pipe is made once per pipe_id and both its
// ends handed out; a FIFO is reopened by path. Either way the bytes that
// were buffered (PipeRecord) are written back once, with the capacity.
#include "fd_kind.h"

#include "../process_setup.h"

#include <cerrno>
#include <cstring>
#include <string>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

// Puts a pipe's or FIFO's buffered bytes (and its capacity) back through
// write_end, which must be O_NONBLOCK: a pipe too small for the bytes
// would block the restore forever; it fails naming fd instead.
static Status refill_pipe(const CkptView &v, u32 pipe_id, int write_end, int fd, const char *what) {
  for (const PipeRecord &pr : v.pipes.records) {
    if (pr.pipe_id != pipe_id) continue;
    auto data = v.pipes.blob(pr.data);
    if (!data) return data.error();
    if (pr.capacity && fcntl(write_end, F_SETPIPE_SZ, pr.capacity) < 0)
      return make_error("fd %d: cannot give the %s its capacity of %u bytes: %s", fd, what, pr.capacity,
                        strerror(errno));
    size_t done = 0;
    while (done < data->size()) {
      ssize_t n = write(write_end, data->data() + done, data->size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN)
        return make_error("fd %d: the %s's %zu buffered bytes do not fit its capacity of %d bytes", fd, what,
                          data->size(), fcntl(write_end, F_GETPIPE_SZ));
      if (n < 0) return make_error("fd %d: cannot refill the %s: %s", fd, what, strerror(errno));
      done += size_t(n);
    }
  }
  return {};
}

// The kernel's O_LARGEFILE (x86-64): glibc defines O_LARGEFILE as 0 on
// 64-bit, but fdinfo shows the kernel's bit.
constexpr u32 kKernelOLargefile = 0100000;

Expected<int> open_pipe_end(FdOpenContext &c, const FdRecord &r) {
  auto it = c.pipes.ends.find(r.pipe_id);
  if (it == c.pipes.ends.end()) {
    int low[2], p[2];
    // Non-blocking while refilled; each fd gets its own flags below.
    if (pipe2(low, O_CLOEXEC | O_NONBLOCK) < 0) return make_error("fd %d: pipe: %s", r.fd, strerror(errno));
    // Out of the way of the fd numbers being restored.
    p[0] = fcntl(low[0], F_DUPFD_CLOEXEC, 512);
    p[1] = fcntl(low[1], F_DUPFD_CLOEXEC, 512);
    close(low[0]);
    close(low[1]);
    if (p[0] < 0 || p[1] < 0) return make_error("fd %d: pipe: %s", r.fd, strerror(errno));
    it = c.pipes.ends.emplace(r.pipe_id, std::make_pair(p[0], p[1])).first;
    CKPT_TRY(refill_pipe(c.view, r.pipe_id, p[1], r.fd, "pipe"));
  }
  int end = static_cast<FdType>(r.type) == FdType::PipeRead ? it->second.first : it->second.second;
  return place_pipe_end(end, r);
}

Expected<int> place_pipe_end(int end, const FdRecord &r) {
  // Status flags (O_NONBLOCK...) belong to the open file, not the pipe
  // (fds sharing one come here once: restore_fds dups them). pipe() made
  // one open file per end; any other was opened through /proc/self/fd/N,
  // which the kernel marks O_LARGEFILE (force_o_largefile on 64-bit) and
  // pipe() does not: such a one is opened the same way, as a new open
  // file. Both ends are held open, so this does not block.
  int fd;
  if (r.open_flags & kKernelOLargefile) {
    std::string self = "/proc/self/fd/" + std::to_string(end);
    fd = open(self.c_str(), (reopen_flags(r) & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return make_error("fd %d: cannot open the pipe again: %s", r.fd, strerror(errno));
  } else {
    fd = fcntl(end, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return make_error("fd %d: dup: %s", r.fd, strerror(errno));
  }
  fcntl(fd, F_SETFL, reopen_flags(r) & (O_NONBLOCK | O_APPEND | O_ASYNC));
  return fd;
}

Status check_fifo(const CkptView &v, const FdRecord &f, const HereNowOptions &) {
  if (f.flags & kFdUnlinked) return {};
  std::string path(v.fds.str_or_empty(f.path));
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return make_error("fd %d: FIFO %s: %s", f.fd, path.c_str(), strerror(errno));
  if (!S_ISFIFO(st.st_mode)) return make_error("fd %d: %s is no longer a FIFO", f.fd, path.c_str());
  return {};
}

Expected<int> open_fifo(FdOpenContext &c, const FdRecord &r) {
  std::string path(c.view.fds.str_or_empty(r.path));
  // Opening one end of a FIFO alone blocks until the other end opens:
  // hold it read-write while opening the real end.
  int hold = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (hold < 0) return make_error("fd %d: %s: %s", r.fd, path.c_str(), strerror(errno));
  int fd = open(path.c_str(), reopen_flags(r) | O_CLOEXEC);
  int e = errno;
  // The bytes live in the FIFO's one pipe, shared by every fd opened on
  // it: put them back once, not once per fd. The first fd keeps the pipe
  // (and its buffer) alive once `hold` is closed.
  Status refilled;
  if (fd >= 0 && r.pipe_id && c.pipes.refilled_fifos.insert(r.pipe_id).second)
    refilled = refill_pipe(c.view, r.pipe_id, hold, r.fd, "FIFO");
  close(hold);
  if (fd < 0) return make_error("fd %d: %s: %s", r.fd, path.c_str(), strerror(e));
  if (!refilled) {
    close(fd);
    return refilled.error();
  }
  return fd;
}

Expected<std::pair<int, int>> recreate_pipe(const CkptView &v, u32 pipe_id) {
  int p[2];
  // Non-blocking while refilled; each fd gets its own flags when placed.
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) return make_error("pipe: %s", strerror(errno));
  if (Status s = refill_pipe(v, pipe_id, p[1], -1, "pipe"); !s) {
    close(p[0]);
    close(p[1]);
    return s.error();
  }
  return std::make_pair(p[0], p[1]);
}

}  // namespace ckpt::reader
