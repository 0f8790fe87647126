#include "process_setup.h"

#include "fd_kinds/fd_kind.h"
#include "process_settings.h"

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

// Opens what fd record r describes through its kind's entry (fd_kinds/),
// or fails naming it.
static Expected<int> open_fd(const CkptView &v, const FdRecord &r, PipeTable &pipes, const int terminal[3]) {
  const ReaderFdKind *kind = reader_fd_kind(r.type);
  if (!kind) return make_error("fd %d: of an unknown kind %u", r.fd, r.type);
  FdOpenContext context{v, pipes, terminal};
  return kind->open(context, r);
}

Expected<int> open_file_description(const CkptView &v, const FdRecord &r, const int terminal[3]) {
  PipeTable unused;
  return open_fd(v, r, unused, terminal);
}

// A second open file of the recreated file at our fd `recreated`.
static Expected<int> reopen_recreated(int recreated, const FdRecord &r) {
  std::string self = "/proc/self/fd/" + std::to_string(recreated);
  int fd = open(self.c_str(), reopen_flags(r) | O_CLOEXEC);
  if (fd < 0) return make_error("fd %d: cannot open the recreated file again: %s", r.fd, strerror(errno));
  lseek(fd, static_cast<off_t>(r.pos), SEEK_SET);
  return fd;
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
  std::map<std::pair<u64, u64>, int> by_inode;      // (dev, ino) of a recreated unlinked file -> our fd
  PipeTable pipes;
  std::vector<std::pair<int, int>> placed;           // (opened fd, target)
  for (const FdRecord &r : v.fds.records) {
    int fd;
    auto shared = r.file_id ? by_file.find(r.file_id) : by_file.end();
    auto type = static_cast<FdType>(r.type);
    bool pipe_end = is_pipe_end(type);
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
    } else if (auto same = (r.flags & kFdUnlinked) ? by_inode.find({r.dev, r.ino}) : by_inode.end();
               same != by_inode.end()) {
      // Another open file of an unlinked file or memfd recreated above
      // (the program reopened it through /proc/self/fd): open that one
      // again, with this open file's own flags, not a second copy.
      auto opened = reopen_recreated(same->second, r);
      if (!opened) return opened.error();
      fd = fcntl(*opened, F_DUPFD_CLOEXEC, top + 128);
      close(*opened);
      if (r.file_id) by_file[r.file_id] = fd;
    } else {
      auto opened = open_fd(v, r, pipes, term);
      if (!opened) return opened.error();
      fd = fcntl(*opened, F_DUPFD_CLOEXEC, top + 128);
      close(*opened);
      if (r.file_id) by_file[r.file_id] = fd;
      if ((r.flags & kFdUnlinked) && fd >= 0) by_inode[{r.dev, r.ino}] = fd;
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
  CKPT_TRY(restore_process_settings(t, v.tasks.str_or_empty(t.cgroup)));
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
