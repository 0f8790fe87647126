#include "lazy_pages.h"

#include "fd_message.h"

#include "lazy_guard.h"
#include "lazy_serve.h"
#include "phase_times.h"

#include <ckpt/img/fault_point.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <string>
#include <utility>
#include <vector>

namespace ckpt::reader {

using namespace img;

bool served_lazily(const CkptView &v, const VmaRecord &m) {
  auto kind = static_cast<VmaKind>(m.kind);
  // PROT_NONE memory cannot be touched, so nothing would fault its pages
  // in before the background copy: read it like the rest.
  if ((m.flags & kVmaShared) || m.prot == 0) return false;
  if (kind != VmaKind::Anon && kind != VmaKind::Heap && kind != VmaKind::Stack) return false;
  for (u32 k = 0; k < m.range_count; k++)
    if (stored_in_file(v.ranges.records[m.first_range + k])) return true;
  return false;
}

// A userfaultfd that serves faults taken in the kernel too (a syscall's
// copy from user memory): the syscall, which without CAP_SYS_PTRACE (in
// the initial user namespace) and with vm.unprivileged_userfaultfd = 0
// refuses such a userfaultfd (EPERM; it would only make
// UFFD_USER_MODE_ONLY ones, which cannot serve a fault inside a syscall, so
// --lazy does not ask for them), then /dev/userfaultfd (Linux 6.1:
// USERFAULTFD_IOC_NEW hands one to whoever may open the device, by its
// file mode; DECISIONS 279). The syscall first: it is one call where the
// device costs three, on every warm start.
static int open_userfaultfd(int flags) {
  int uffd = static_cast<int>(syscall(SYS_userfaultfd, flags));
  if (uffd >= 0 || errno != EPERM) return uffd;
  int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
  if (dev < 0) {
    errno = EPERM;
    return -1;
  }
  uffd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
  int e = errno;
  close(dev);
  if (uffd < 0) errno = e == EACCES ? EPERM : e;
  return uffd;
}

// The line for a userfaultfd this user may not create: what --lazy needs
// and what to do instead.
static Error uffd_refused(int e) {
  char sysctl = '?';
  if (int fd = open("/proc/sys/vm/unprivileged_userfaultfd", O_RDONLY | O_CLOEXEC); fd >= 0) {
    if (read(fd, &sysctl, 1) != 1) sysctl = '?';
    close(fd);
  }
  return make_error("--lazy needs userfaultfd, which this user may not create (%s: vm.unprivileged_userfaultfd is "
                    "%c, /dev/userfaultfd is not open to it and it has no CAP_SYS_PTRACE): restore without --lazy, "
                    "or as root",
                    strerror(e), sysctl);
}

Expected<int> make_lazy_uffd(int sock) {
  int uffd = open_userfaultfd(O_CLOEXEC | O_NONBLOCK);
  if (uffd < 0) {
    int e = errno;
    close(sock);
    if (e == EPERM) return uffd_refused(e);
    return make_error("userfaultfd: %s", strerror(e));
  }
  // Non-cooperative events: the helper must see the process fork (the
  // child's missing pages would read as zeros otherwise: dup_userfaultfd
  // drops the registration), move memory and drop or unmap pages.
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |
                 UFFD_FEATURE_EVENT_UNMAP;
  if (ioctl(uffd, UFFDIO_API, &api) < 0) {
    int e = errno;
    close(uffd);
    close(sock);
    return make_error("userfaultfd API handshake: %s", strerror(e));
  }
  FdMessage m;
  cmsghdr *c = CMSG_FIRSTHDR(&m.msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &uffd, sizeof(int));
  ssize_t n = sendmsg(sock, &m.msg, MSG_NOSIGNAL);
  int e = errno;
  close(sock);
  if (n != 1) {
    close(uffd);
    return make_error("cannot pass the userfaultfd to imgtool: %s", strerror(e));
  }
  return uffd;
}

Expected<int> LazyHelper::open_channel() {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return make_error("socketpair: %s", strerror(errno));
  sock_ = sv[0];
  return sv[1];
}

void LazyHelper::close_parent_end() {
  if (sock_ >= 0) close(sock_);
  sock_ = -1;
}

Status LazyHelper::go() {
  running_ = true;
  if (go_ < 0) return {};
  // A program that exits at once (a warm start that answers and leaves)
  // may be gone before this byte is sent, and the helper with it: it ends
  // when the process it serves has exited (its pidfd). Through a pipe that
  // write raised SIGPIPE and killed imgtool (or the exec form's launcher)
  // instead of reporting the program's exit status (rc 141, about one warm
  // start in a hundred under load); a socket sends with MSG_NOSIGNAL, and
  // EPIPE means there is nothing left to start (DECISIONS 255).
  ssize_t n;
  while ((n = send(go_, "g", 1, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  int e = errno;
  close(go_);
  go_ = -1;
  if (n != 1 && e != EPIPE && e != ECONNRESET)
    return make_error("cannot start the lazy-pages helper's copy: %s", strerror(e));
  return {};
}

namespace {

void reap(pid_t p) {
  while (waitpid(p, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// A helper that may still be needed (the process never ran, or a test
// holds it serving faults): killed, and reaped with its guard (lazy_guard.h),
// our child too: the guard sees the helper's socket close without 'f',
// kills the restored process and what it forked, and exits. Waited for,
// so that no imgtool process runs on after `imgtool restore` has ended (a
// test's subreaper saw one).
void kill_helper_and_reap(pid_t helper, pid_t guard) {
  kill(helper, SIGKILL);
  reap(helper);
  if (guard > 0) reap(guard);
}

}  // namespace

LazyHelper::~LazyHelper() {
  if (sock_ >= 0) close(sock_);
  if (go_ >= 0) close(go_);
  if (pid_ <= 0) return;
  // CKPT_LAZY_NO_BACKGROUND (tests) makes a helper that waits for faults
  // until it is killed.
  const char *hold = std::getenv("CKPT_LAZY_NO_BACKGROUND");
  if (!running_ || (hold && *hold == '1')) {
    kill_helper_and_reap(pid_, guard_);
    return;
  }
  // The helper says 'f' to its guard and exits; the guard exits on that
  // byte meanwhile: both are reaped here.
  reap(pid_);
  if (guard_ > 0) reap(guard_);
}

Status LazyHelper::start(const ImageReader &image, const CkptView &v, pid_t pid) {
  int sock = std::exchange(sock_, -1);
  // A socket, not a pipe: go() must not raise SIGPIPE once the helper
  // has ended (see there).
  int go_pipe[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go_pipe) < 0) {
    close(sock);
    return make_error("socketpair: %s", strerror(errno));
  }
  go_ = go_pipe[1];
  int go = go_pipe[0];
  FdMessage m;
  ssize_t n;
  while ((n = recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  close(sock);
  cmsghdr *c = n == 1 ? CMSG_FIRSTHDR(&m.msg) : nullptr;
  // No fd: the child failed before it made one; its status says why.
  if (!c || c->cmsg_type != SCM_RIGHTS) {
    close(go);
    return {};
  }
  int uffd;
  std::memcpy(&uffd, CMSG_DATA(c), sizeof uffd);

  std::vector<Stored> stored;
  std::vector<std::pair<u64, u64>> vmas;
  for (const VmaRecord &m : v.vmas.records) {
    if (!served_lazily(v, m)) continue;
    vmas.push_back({m.start, m.end});
    for (u32 k = 0; k < m.range_count; k++) {
      const PageRangeRecord &r = v.ranges.records[m.first_range + k];
      // Also bytes an earlier core stores for this one (§9.23): the
      // mapping is of the whole file.
      if (!stored_in_file(r)) continue;
      stored.push_back({r.start, r.length, stored_range(image, v, r).bytes.data()});
    }
  }
  std::sort(stored.begin(), stored.end(), [](const Stored &a, const Stored &b) { return a.start < b.start; });
  // Taken while the process is our child (alive or a zombie), so it names
  // that process; -1 without pidfd_open (Linux < 5.3): the helper then
  // learns of the exit from its first failed background copy.
  int exited = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (exited >= 0) fcntl(exited, F_SETFD, FD_CLOEXEC);
  // The guard first, so that it is our child and not the helper's.
  int guard_sock = -1;
  pid_t guard = fork_lazy_guard(uffd, exited, pid, &guard_sock);
  pid_t helper = fork();
  if (helper < 0) {
    int e = errno;
    // The guard sees its socket close without 'f': it kills the process,
    // which has not run (the restore fails).
    if (guard_sock >= 0) close(guard_sock);
    if (guard > 0) reap(guard);
    close(uffd);
    close(go);
    if (exited >= 0) close(exited);
    return make_error("cannot start the lazy-pages helper: %s", strerror(e));
  }
  if (helper == 0) {
    close(go_);  // or the helper would never see imgtool's end close
    // It outlives imgtool with --detach: it keeps none of imgtool's fds
    // (as the guard, keep_only). Its output: a reader of imgtool's stdout
    // would wait for the helper. Its pid file (restore --pidfile, opened
    // before these forks): the kernel reports a file's IN_CLOSE_WRITE
    // when the last reference to the open file goes (__fput), so a copy
    // here delayed that event until the helper ended, and a watcher of
    // the pid file (bench/timed_run -p) waited for a process that runs.
    int trace = tracing_times() ? fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3) : -1;
    keep_only({&uffd, &go, &exited, &guard_sock, &trace});
    if (trace >= 0) set_phase_trace_fd(trace);
    // Nor the terminal's signals: a Ctrl-C meant for the restored process
    // must not kill the helper (closing the userfaultfd would leave every
    // page not yet in reading as zeros).
    setpgid(0, 0);
    serve_lazy_pages(uffd, std::move(stored), std::move(vmas), go, exited, guard_sock);
    _exit(0);
  }
  if (guard_sock >= 0) close(guard_sock);  // the helper's now: its end is the guard's EOF
  guard_ = guard;
  close(uffd);
  close(go);
  if (exited >= 0) close(exited);
  pid_ = helper;
  return {};
}

}  // namespace ckpt::reader
