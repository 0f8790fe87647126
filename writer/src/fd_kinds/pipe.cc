// Anonymous pipes and FIFOs: their fds share one buffer, captured once per
// inode without consuming it (pidfd_getfd + tee) into a PipeRecord that
// restore refills; ends of one pipe are matched by pipe_id.
#include "fd_kind.h"

#include "../procfs.h"

#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

namespace ckpt::writer {

using img::Expected;
using img::make_error;
using img::u32;

namespace {

bool is_pipe_inode(const FdProbe &p) { return !is_anon_inode(p.link) && S_ISFIFO(p.st.st_mode); }

/// /proc/sys/fs/pipe-max-size: the largest F_SETPIPE_SZ allowed without
/// CAP_SYS_RESOURCE.
Expected<u32> pipe_max_size() {
  auto text = read_file("/proc/sys/fs/pipe-max-size");
  if (!text) return text.error();
  unsigned long v = strtoul(text->c_str(), nullptr, 10);
  if (v == 0 || v > UINT32_MAX)
    return make_error("/proc/sys/fs/pipe-max-size: bad value \"%s\"", text->c_str());
  return u32(v);
}

}  // namespace

// pipe(2) opens its ends O_RDONLY and O_WRONLY; the access mode is the
// only difference between them. A FIFO's link is its path, a pipe's
// "pipe:[INODE]".
bool recognizes_pipe_read(const FdProbe &p) {
  return is_pipe_inode(p) && starts_with(p.link, "pipe:[") && (p.open_flags & O_ACCMODE) == O_RDONLY;
}
bool recognizes_pipe_write(const FdProbe &p) {
  return is_pipe_inode(p) && starts_with(p.link, "pipe:[") && (p.open_flags & O_ACCMODE) != O_RDONLY;
}
bool recognizes_fifo(const FdProbe &p) { return is_pipe_inode(p) && !starts_with(p.link, "pipe:["); }

Expected<PipeInfo> read_pipe_buffer(pid_t pid, int pidfd, int fd, bool readable) {
  PipeInfo info;
  // pidfd_getfd() gives us the target's open file description itself (not
  // a reopen), with FD_CLOEXEC set on our fd.
  UniqueFd got(int(syscall(SYS_pidfd_getfd, pidfd, fd, 0)));
  if (!got.valid())
    return make_error("pid %d fd %d: pidfd_getfd: %s", pid, fd, strerror(errno));
  UniqueFd reopened;
  int src = got.get();
  if (!readable) {
    // Only write ends are held: opening the pipe inode's /proc link read-only
    // gives a fresh read end of the same pipe (fifo_open works for pipefs
    // inodes too). O_NONBLOCK so a FIFO open never waits for a writer.
    std::string self = "/proc/self/fd/" + std::to_string(got.get());
    reopened = UniqueFd(open(self.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!reopened.valid())
      return make_error("pid %d fd %d: open a read end via %s: %s", pid, fd, self.c_str(),
                        strerror(errno));
    src = reopened.get();
  }
  int cap = fcntl(src, F_GETPIPE_SZ);
  if (cap < 0) return make_error("pid %d fd %d: F_GETPIPE_SZ: %s", pid, fd, strerror(errno));
  info.capacity = u32(cap);
  int avail = 0;
  if (ioctl(src, FIONREAD, &avail) != 0)
    return make_error("pid %d fd %d: FIONREAD on the pipe: %s", pid, fd, strerror(errno));
  if (avail <= 0) return info;  // tee() on an empty pipe would only say EAGAIN

  int ours[2];
  if (pipe2(ours, O_CLOEXEC | O_NONBLOCK) != 0)
    return make_error("pid %d fd %d: pipe2 for copying the pipe: %s", pid, fd, strerror(errno));
  UniqueFd our_r(ours[0]), our_w(ours[1]);
  // tee() links the source's buffers one ring slot each, and a slot may hold
  // only a few bytes (packet-mode pipes, vmsplice, non-mergeable writes),
  // so our ring needs as many slots as the source's: match its capacity.
  // Above pipe-max-size that needs CAP_SYS_RESOURCE; fall back to the
  // maximum and fail below if the bytes do not all fit.
  int ours_cap = fcntl(our_w.get(), F_SETPIPE_SZ, cap);
  if (ours_cap < 0 && errno == EPERM) {
    auto max = pipe_max_size();
    if (!max) return max.error().context(fd_where(pid, fd));
    ours_cap = fcntl(our_w.get(), F_SETPIPE_SZ, int(*max));
  }
  if (ours_cap < 0)
    return make_error("pid %d fd %d: F_SETPIPE_SZ %d on our copy pipe: %s", pid, fd, cap,
                      strerror(errno));
  if (avail > ours_cap)
    return make_error("pid %d fd %d: pipe holds %d bytes, more than the %d our copy pipe can take "
                      "(needs CAP_SYS_RESOURCE)",
                      pid, fd, avail, ours_cap);
  // tee() duplicates the buffers' references into our pipe; the source keeps
  // every byte, so the target reads exactly what it would have.
  ssize_t teed;
  do {
    teed = tee(src, our_w.get(), size_t(avail), SPLICE_F_NONBLOCK);
  } while (teed < 0 && errno == EINTR);
  if (teed < 0) return make_error("pid %d fd %d: tee: %s", pid, fd, strerror(errno));
  if (teed != avail)
    return make_error("pid %d fd %d: tee copied %zd of %d buffered bytes (more buffers than our "
                      "%d byte pipe has slots for)",
                      pid, fd, teed, avail, ours_cap);
  info.data.resize(size_t(avail));
  size_t done = 0;
  while (done < info.data.size()) {
    ssize_t n = read(our_r.get(), info.data.data() + done, info.data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return make_error("pid %d fd %d: read back the pipe copy at %zu of %d bytes: %s", pid, fd,
                        done, avail, n == 0 ? "unexpected EOF" : strerror(errno));
    done += size_t(n);
  }
  return info;
}


}  // namespace ckpt::writer
