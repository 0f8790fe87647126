// StreamSpool (stream_spool.h).
#include "stream_spool.h"

#include <cerrno>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace ckpt::reader {

using namespace img;

Expected<StreamSpool> StreamSpool::from_fd(int in) {
  if (isatty(in)) return make_error("a terminal, not an image stream (pipe an image into it)");
  // MFD_CLOEXEC: restore forks but never execs, so the fd still reaches
  // the processes that open path(); nothing exec'ed inherits it.
  int fd = memfd_create("ckpt-restore-stdin", MFD_CLOEXEC);
  if (fd < 0) return make_error("cannot create a memory file to hold the image stream: %s", strerror(errno));
  StreamSpool spool(fd, 0);
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("cannot read the image: %s", strerror(errno));
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(fd, buf.data() + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0)
        return make_error("cannot hold the image stream in memory after %llu bytes: %s", spool.size_ + done,
                          strerror(errno));
      done += w;
    }
    spool.size_ += n;
  }
  if (spool.size_ == 0) return make_error("ended before any byte of an image arrived");
  return spool;
}

std::string StreamSpool::path() const { return "/proc/self/fd/" + std::to_string(fd_); }

void StreamSpool::release() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

}  // namespace ckpt::reader
