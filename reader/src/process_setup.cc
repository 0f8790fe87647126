#include "process_setup.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <set>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

static Status write_all(int fd, std::span<const u8> data, const char *what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("cannot refill %s: %s", what, strerror(errno));
    done += n;
  }
  return {};
}

// Pipes being recreated: anonymous pipes by pipe id (both ends, shared by
// every fd on them), and the FIFOs whose buffered bytes are back already.
struct PipeTable {
  std::map<u32, std::pair<int, int>> ends;
  std::set<u32> refilled_fifos;
};

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

// Opens what fd record r describes, or fails naming it.
static Expected<int> open_fd(const CkptView &v, const FdRecord &r, PipeTable &pipes, const int terminal[3]) {
  std::string path(v.fds.str_or_empty(r.path));
  int acc = r.open_flags & O_ACCMODE;
  // Flags that made sense at open time only, or that open() cannot take.
  int flags = int(r.open_flags) & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC);
  switch (static_cast<FdType>(r.type)) {
    case FdType::PipeRead:
    case FdType::PipeWrite: {
      auto it = pipes.ends.find(r.pipe_id);
      if (it == pipes.ends.end()) {
        int low[2], p[2];
        // Non-blocking while refilled; each fd gets its own flags below.
        if (pipe2(low, O_CLOEXEC | O_NONBLOCK) < 0) return make_error("fd %d: pipe: %s", r.fd, strerror(errno));
        // Out of the way of the fd numbers being restored.
        p[0] = fcntl(low[0], F_DUPFD_CLOEXEC, 512);
        p[1] = fcntl(low[1], F_DUPFD_CLOEXEC, 512);
        close(low[0]);
        close(low[1]);
        if (p[0] < 0 || p[1] < 0) return make_error("fd %d: pipe: %s", r.fd, strerror(errno));
        it = pipes.ends.emplace(r.pipe_id, std::make_pair(p[0], p[1])).first;
        CKPT_TRY(refill_pipe(v, r.pipe_id, p[1], r.fd, "pipe"));
      }
      int end = static_cast<FdType>(r.type) == FdType::PipeRead ? it->second.first : it->second.second;
      int fd = fcntl(end, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return make_error("fd %d: dup: %s", r.fd, strerror(errno));
      fcntl(fd, F_SETFL, flags & (O_NONBLOCK | O_APPEND | O_ASYNC));
      return fd;
    }
    case FdType::CharDevice:
      if (r.flags & kFdTerminal) {
        int src = terminal[acc == O_RDONLY ? 0 : (r.fd == 2 ? 2 : 1)];
        if (src >= 0) {
          int fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
          if (fd < 0) return make_error("fd %d: dup of the terminal: %s", r.fd, strerror(errno));
          return fd;
        }
      }
      break;
    case FdType::Fifo: {
      // Opening one end of a FIFO alone blocks until the other end opens:
      // hold it read-write while opening the real end.
      int hold = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
      if (hold < 0) return make_error("fd %d: %s: %s", r.fd, path.c_str(), strerror(errno));
      int fd = open(path.c_str(), flags | O_CLOEXEC);
      int e = errno;
      // The bytes live in the FIFO's one pipe, shared by every fd opened
      // on it: put them back once, not once per fd. The first fd keeps the
      // pipe (and its buffer) alive once `hold` is closed.
      Status refilled;
      if (fd >= 0 && r.pipe_id && pipes.refilled_fifos.insert(r.pipe_id).second)
        refilled = refill_pipe(v, r.pipe_id, hold, r.fd, "FIFO");
      close(hold);
      if (fd < 0) return make_error("fd %d: %s: %s", r.fd, path.c_str(), strerror(e));
      if (!refilled) {
        close(fd);
        return refilled.error();
      }
      return fd;
    }
    case FdType::Regular:
    case FdType::MemFd:
      if ((r.flags & kFdUnlinked) || static_cast<FdType>(r.type) == FdType::MemFd) {
        // Recreate the unlinked file from its captured bytes, then unlink it
        // again: a memfd as a memfd, anything else beside its old path.
        auto content = v.fds.blob(r.content);
        if (!content) return content.error();
        int fd;
        if (static_cast<FdType>(r.type) == FdType::MemFd) {
          std::string name = path.rfind("/memfd:", 0) == 0 ? path.substr(7) : "restored";
          if (name.size() > 10 && name.compare(name.size() - 10, 10, " (deleted)") == 0) name.resize(name.size() - 10);
          fd = static_cast<int>(syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC));
        } else {
          // Under its old name when that is free, then unlinked: /proc
          // shows "NAME (deleted)" again. An O_TMPFILE file (the fallback,
          // when the name is taken) shows as "#INODE (deleted)".
          fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
          if (fd >= 0) {
            unlink(path.c_str());
          } else {
            std::string dir = path.substr(0, path.rfind('/') + 1);
            if (dir.empty()) dir = "/tmp/";
            fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
            if (fd < 0) fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
          }
          // The mode as it was, not as imgtool's umask left it.
          if (fd >= 0) (void)fchmod(fd, r.mode & 07777);
        }
        if (fd < 0) return make_error("fd %d: cannot recreate unlinked %s: %s", r.fd, path.c_str(), strerror(errno));
        CKPT_TRY(write_all(fd, *content, path.c_str()));
        {
          // Reopen through /proc with the original access mode and status
          // flags (O_APPEND, O_NONBLOCK...), none of the creation's
          // (O_TMPFILE would show in F_GETFL).
          std::string self = "/proc/self/fd/" + std::to_string(fd);
          int again = open(self.c_str(), flags | O_CLOEXEC);
          if (again < 0) return make_error("fd %d: cannot reopen the recreated %s: %s", r.fd, path.c_str(), strerror(errno));
          close(fd);
          fd = again;
        }
        lseek(fd, static_cast<off_t>(r.pos), SEEK_SET);
        return fd;
      }
      break;
    default:
      break;
  }
  int fd = open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return make_error("fd %d: cannot open %s: %s", r.fd, path.c_str(), strerror(errno));
  // An O_PATH fd has no file position (lseek fails with EBADF). A file
  // shorter than at the dump (restore --reopen-changed-files: a truncated
  // or rotated log) is continued at its end, not past it with a hole.
  u64 pos = r.pos;
  struct stat now {};
  if (static_cast<FdType>(r.type) == FdType::Regular && fstat(fd, &now) == 0 && u64(now.st_size) < r.size)
    pos = std::min<u64>(pos, u64(now.st_size));
  if (static_cast<FdType>(r.type) == FdType::Regular && !(r.open_flags & (O_APPEND | O_PATH)))
    if (lseek(fd, static_cast<off_t>(pos), SEEK_SET) < 0)
      return make_error("fd %d: cannot seek %s to %llu: %s", r.fd, path.c_str(), (unsigned long long)r.pos,
                        strerror(errno));
  if ((r.open_flags & O_APPEND) && static_cast<FdType>(r.type) == FdType::Regular)
    lseek(fd, static_cast<off_t>(pos), SEEK_SET);
  return fd;
}

Expected<int> open_file_description(const CkptView &v, const FdRecord &r, const int terminal[3]) {
  PipeTable unused;
  return open_fd(v, r, unused, terminal);
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

Status restore_fds(const CkptView &v, std::vector<int *> keep, const int terminal[3], const InheritedFds *inherited) {
  // Our own fds must not sit where restored ones go: move them above all.
  int top = 3;
  for (const FdRecord &r : v.fds.records) top = std::max(top, r.fd + 1);
  for (int *fd : keep) {
    int moved = fcntl(*fd, F_DUPFD_CLOEXEC, top + 16);
    if (moved < 0) return make_error("cannot move fd %d: %s", *fd, strerror(errno));
    close(*fd);
    *fd = moved;
  }
  int term[3];
  for (int i = 0; i < 3; i++) term[i] = terminal[i] >= 0 ? fcntl(terminal[i], F_DUPFD_CLOEXEC, top + 64) : -1;

  // Close everything else we have open, except the kept and terminal fds.
  std::vector<int> ours;
  for (int *fd : keep) ours.push_back(*fd);
  for (int t : term) ours.push_back(t);
  DIR *d = opendir("/proc/self/fd");
  if (!d) return make_error("/proc/self/fd: %s", strerror(errno));
  std::vector<int> open_fds;
  while (dirent *e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd != dirfd(d)) open_fds.push_back(fd);
  }
  closedir(d);
  for (int fd : open_fds)
    if (std::find(ours.begin(), ours.end(), fd) == ours.end()) close(fd);

  std::map<u32, int> by_file;                       // file_id -> our fd
  PipeTable pipes;
  std::vector<std::pair<int, int>> placed;           // (opened fd, target)
  for (const FdRecord &r : v.fds.records) {
    int fd;
    auto shared = r.file_id ? by_file.find(r.file_id) : by_file.end();
    auto type = static_cast<FdType>(r.type);
    bool pipe_end = type == FdType::PipeRead || type == FdType::PipeWrite;
    // Made once for the tree by an ancestor and inherited (tree_create.h).
    auto inherited_pipe = inherited && pipe_end ? inherited->pipes.find(r.pipe_id) : std::map<u32, std::pair<int, int>>::const_iterator{};
    auto inherited_file = inherited && !pipe_end ? inherited->files.find(r.file_id) : std::map<u32, int>::const_iterator{};
    if (inherited && pipe_end && inherited_pipe != inherited->pipes.end()) {
      int end = type == FdType::PipeRead ? inherited_pipe->second.first : inherited_pipe->second.second;
      fd = fcntl(end, F_DUPFD_CLOEXEC, top + 128);
      // The pipe's status flags are per description: set them as this fd had them.
      if (fd >= 0) fcntl(fd, F_SETFL, int(r.open_flags) & (O_NONBLOCK | O_APPEND | O_ASYNC));
    } else if (inherited && !pipe_end && r.file_id && inherited_file != inherited->files.end()) {
      fd = fcntl(inherited_file->second, F_DUPFD_CLOEXEC, top + 128);
    } else if (shared != by_file.end()) {
      fd = fcntl(shared->second, F_DUPFD_CLOEXEC, top + 128);
    } else {
      auto opened = open_fd(v, r, pipes, term);
      if (!opened) return opened.error();
      fd = fcntl(*opened, F_DUPFD_CLOEXEC, top + 128);
      close(*opened);
      if (r.file_id) by_file[r.file_id] = fd;
    }
    if (fd < 0) return make_error("fd %d: %s", r.fd, strerror(errno));
    placed.push_back({fd, r.fd});
  }
  for (size_t i = 0; i < placed.size(); i++) {
    const FdRecord &r = v.fds.records[i];
    if (dup3(placed[i].first, placed[i].second, (r.fd_flags & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0)
      return make_error("fd %d: dup3: %s", r.fd, strerror(errno));
  }
  for (auto &[fd, target] : placed) close(fd);
  for (auto &[id, ends] : pipes.ends) {
    close(ends.first);
    close(ends.second);
  }
  for (int t : term)
    if (t >= 0) close(t);
  return {};
}

// struct kernel_sigaction for rt_sigaction(2) on x86-64.
struct KernelSigaction {
  u64 handler, flags, restorer, mask;
};

Status restore_process_state(const CkptView &v) {
  const TaskRecord &t = v.tasks.records[0];
  if (t.sid == t.pid && getsid(0) != t.pid) {
    if (setsid() < 0) return make_error("setsid: %s", strerror(errno));
  } else if (t.pgid == t.pid && getpgid(0) != t.pid) {
    if (setpgid(0, 0) < 0) return make_error("setpgid: %s", strerror(errno));
  }
  std::string cwd(v.tasks.str_or_empty(t.cwd));
  if (chdir(cwd.c_str()) < 0) return make_error("cannot change to the working directory %s: %s", cwd.c_str(), strerror(errno));
  umask(t.umask);
  if (personality(t.personality) < 0) return make_error("personality 0x%x: %s", t.personality, strerror(errno));
  setpriority(PRIO_PROCESS, 0, t.nice);
  std::string comm(v.tasks.str_or_empty(t.comm));
  prctl(PR_SET_NAME, comm.c_str());
  for (const RlimitRecord &r : v.rlimits.records) {
    struct rlimit lim = {r.cur, r.max};
    if (setrlimit(static_cast<int>(r.resource), &lim) < 0 && errno != EINVAL)
      return make_error("cannot restore resource limit %u: %s", r.resource, strerror(errno));
  }
  // The image lists only dispositions that are not SIG_DFL; every other
  // one is SIG_DFL, whatever imgtool inherited (SIG_IGN survives fork and
  // exec: `trap '' TERM` in the caller's shell would leak in).
  std::vector<KernelSigaction> actions(65, KernelSigaction{0, 0, 0, 0});
  for (const SigActionRecord &s : v.sigactions.records)
    if (s.signo >= 1 && s.signo <= 64) actions[s.signo] = {s.handler, s.flags, s.restorer, s.mask};
  for (int signo = 1; signo <= 64; signo++) {
    if (signo == SIGKILL || signo == SIGSTOP) continue;
    const KernelSigaction &ka = actions[signo];
    if (syscall(SYS_rt_sigaction, signo, &ka, nullptr, 8) < 0)
      return make_error("cannot restore the action of signal %d: %s", signo, strerror(errno));
  }
  for (const TimerRecord &tm : v.timers.records) {
    int which = -1;
    switch (static_cast<TimerKind>(tm.kind)) {
      case TimerKind::ItimerReal: which = ITIMER_REAL; break;
      case TimerKind::ItimerVirtual: which = ITIMER_VIRTUAL; break;
      case TimerKind::ItimerProf: which = ITIMER_PROF; break;
      default: continue;
    }
    itimerval it{};
    it.it_interval.tv_sec = tm.interval_ns / 1000000000;
    it.it_interval.tv_usec = (tm.interval_ns % 1000000000) / 1000;
    it.it_value.tv_sec = tm.value_ns / 1000000000;
    it.it_value.tv_usec = (tm.value_ns % 1000000000) / 1000;
    if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0) it.it_value.tv_usec = 1;
    if (setitimer(which, &it, nullptr) < 0) return make_error("setitimer: %s", strerror(errno));
  }
  return {};
}

}  // namespace ckpt::reader
