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
#include <time.h>
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
  // /proc/self/fd/N is a magic link: O_NOFOLLOW (shm_open's) would refuse
  // it with ELOOP.
  int fd = open(self.c_str(), (reopen_flags(r) & ~O_NOFOLLOW) | O_CLOEXEC);
  if (fd < 0) return make_error("fd %d: cannot open the recreated file again: %s", r.fd, strerror(errno));
  lseek(fd, static_cast<off_t>(r.pos), SEEK_SET);
  return fd;
}

// Closes every fd of ours not in `kept` (-1s ignored): close_range over the
// gaps between them (decision 233: one call per gap, where reading
// /proc/self/fd cost a directory walk with a proc inode per fd in every
// restoring child). Where close_range is missing (Linux < 5.9: ENOSYS) the
// fds are those /proc/self/fd lists.
static Status close_all_but(std::vector<int> kept) {
  std::erase_if(kept, [](int fd) { return fd < 0; });
  std::sort(kept.begin(), kept.end());
  unsigned from = 0;
  bool ranges = true;
  for (size_t i = 0; ranges && i < kept.size(); i++) {
    unsigned next = static_cast<unsigned>(kept[i]);
    if (next > from && syscall(SYS_close_range, from, next - 1, 0) < 0) ranges = false;
    from = next + 1;
  }
  if (ranges && syscall(SYS_close_range, from, ~0u, 0) < 0) ranges = false;
  if (ranges) return {};
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
    if (!std::binary_search(kept.begin(), kept.end(), fd)) close(fd);
  return {};
}

Status restore_fds(const CkptView &v, std::vector<int *> keep, const int terminal[3], const InheritedFds *inherited) {
  // Our own fds must not sit where restored ones go: move them above all.
  int top = 3;
  for (const FdRecord &r : v.fds.records) top = std::max(top, r.fd + 1);
  // Room for the table at its numbers and, while it is built, a copy of
  // each fd above it (from top + 128): imgtool's RLIMIT_NOFILE (often
  // 1024) is lower than a server's fd numbers. The image's own limit is
  // set afterwards with its other rlimits.
  rlim_t need = rlim_t(top) + 192 + v.fds.records.size() + keep.size();
  struct rlimit nofile {};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < need) {
    nofile.rlim_cur = need;
    nofile.rlim_max = std::max(nofile.rlim_max, need);
    if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
      return make_error("cannot raise RLIMIT_NOFILE to %llu for fds up to %d: %s", (unsigned long long)need, top - 1,
                        strerror(errno));
  }
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
  CKPT_TRY(close_all_but(ours));

  std::map<u32, int> by_file;                       // file_id -> our fd
  std::map<std::pair<u64, u64>, int> by_inode;      // (dev, ino) of a recreated unlinked file -> our fd
  PipeTable pipes;
  // Pty pairs made once for the tree: the pty kind finds them where it
  // keeps its own (closed below with those).
  if (inherited)
    for (auto &[index, pair] : inherited->pty_pairs) {
      int m = fcntl(pair.first, F_DUPFD_CLOEXEC, top + 128);
      int s = pair.second >= 0 ? fcntl(pair.second, F_DUPFD_CLOEXEC, top + 128) : -1;
      if (m < 0 || (pair.second >= 0 && s < 0)) return make_error("pty %u: dup: %s", index, strerror(errno));
      pipes.pty_pairs[index] = {m, s};
    }
  std::vector<std::pair<int, int>> placed;           // (opened fd, target)
  for (const FdRecord &r : v.fds.records) {
    int fd;
    auto shared = r.file_id ? by_file.find(r.file_id) : by_file.end();
    auto type = static_cast<FdType>(r.type);
    bool pipe_end = is_pipe_end(type);
    // Made once for the tree by an ancestor and inherited (tree_create.h).
    auto inherited_pipe = inherited && pipe_end ? inherited->pipes.find(r.pipe_id) : std::map<u32, std::pair<int, int>>::const_iterator{};
    auto inherited_file = inherited && !pipe_end ? inherited->files.find(r.file_id) : std::map<u32, int>::const_iterator{};
    // A connected AF_UNIX socket whose pair spans processes (tree_plan.cc).
    auto inherited_socket = inherited && type == FdType::Socket ? inherited->unix_sockets.find(r.ino)
                                                                : std::map<u64, int>::const_iterator{};
    if (inherited && type == FdType::Socket && inherited_socket != inherited->unix_sockets.end()) {
      fd = fcntl(inherited_socket->second, F_DUPFD_CLOEXEC, top + 128);
      if (r.file_id) by_file[r.file_id] = fd;
    } else if (inherited && pipe_end && inherited_pipe != inherited->pipes.end() && shared != by_file.end()) {
      fd = fcntl(shared->second, F_DUPFD_CLOEXEC, top + 128);
    } else if (inherited && pipe_end && inherited_pipe != inherited->pipes.end()) {
      // The same open file as another process's (inherited across fork), or
      // one of this process's own (opened through /proc): each with its
      // own status flags (place_pipe_end).
      int end = type == FdType::PipeRead ? inherited_pipe->second.first : inherited_pipe->second.second;
      auto opened = place_pipe_end(end, r);
      if (!opened) return opened.error();
      fd = fcntl(*opened, F_DUPFD_CLOEXEC, top + 128);
      close(*opened);
      if (r.file_id) by_file[r.file_id] = fd;
    } else if (inherited && !pipe_end && r.file_id && inherited_file != inherited->files.end()) {
      fd = fcntl(inherited_file->second, F_DUPFD_CLOEXEC, top + 128);
      // Made by the root (a deleted file some process maps shared, or one
      // several processes hold): another open file of the same inode here
      // is reopened from it, not recreated as a copy.
      if (fd >= 0 && (r.flags & kFdUnlinked)) by_inode.emplace(std::make_pair(r.dev, r.ino), fd);
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
  for (auto &[ino, fd] : pipes.unix_ends) close(fd);
  // What a kind does once every fd is at its number (epoll's targets).
  for (const FdRecord &r : v.fds.records)
    if (const ReaderFdKind *kind = reader_fd_kind(r.type); kind && kind->after_placed) CKPT_TRY(kind->after_placed(v, r));
  for (auto &[id, ends] : pipes.ends) {
    close(ends.first);
    close(ends.second);
  }
  for (auto &[index, pair] : pipes.pty_pairs) {
    close(pair.first);
    if (pair.second >= 0) close(pair.second);
  }
  for (int t : term)
    if (t >= 0) close(t);
  return {};
}

// struct kernel_sigaction for rt_sigaction(2) on x86-64.
struct KernelSigaction {
  u64 handler, flags, restorer, mask;
};

// The kernel's struct sigevent on x86-64 (64 bytes; glibc's names the
// thread id field differently across versions).
struct KernelSigevent {
  u64 value;
  i32 signo;
  i32 notify;
  i32 tid;
  i32 pad[11];
};
static_assert(sizeof(KernelSigevent) == 64);

// prctl(PR_TIMER_CREATE_RESTORE_IDS), Linux 6.16 (kernel/time/posix-timers.c):
// while on, timer_create takes the id to give the new timer from its
// third argument instead of choosing one. Older headers lack it.
constexpr int kPrTimerCreateRestoreIds = 77;
constexpr int kPrTimerCreateRestoreIdsOff = 0;
constexpr int kPrTimerCreateRestoreIdsOn = 1;

static itimerspec to_itimerspec(u64 value_ns, u64 interval_ns) {
  itimerspec its{};
  its.it_value = {static_cast<time_t>(value_ns / 1000000000), static_cast<long>(value_ns % 1000000000)};
  its.it_interval = {static_cast<time_t>(interval_ns / 1000000000), static_cast<long>(interval_ns % 1000000000)};
  return its;
}

// POSIX timers with the ids the program holds, their clocks and sigevents,
// armed with the time that was left. Made now, with only the main thread
// alive and every signal blocked: one that expires before the program
// runs again is delivered when the restorer unblocks signals. The overrun
// count of the last expiry is not restored (decision 98).
static Status restore_posix_timers(const CkptView &v) {
  bool any = false;
  for (const TimerRecord &tm : v.timers.records) any |= static_cast<TimerKind>(tm.kind) == TimerKind::Posix;
  if (!any) return {};
  if (prctl(kPrTimerCreateRestoreIds, kPrTimerCreateRestoreIdsOn, 0, 0, 0) != 0)
    return make_error("POSIX timers cannot be given their ids on this kernel (prctl PR_TIMER_CREATE_RESTORE_IDS, "
                      "Linux 6.16): %s",
                      strerror(errno));
  for (const TimerRecord &tm : v.timers.records) {
    if (static_cast<TimerKind>(tm.kind) != TimerKind::Posix) continue;
    KernelSigevent sev{};
    sev.value = tm.sigev_value;
    sev.signo = tm.sigev_signo;
    sev.notify = tm.sigev_notify;
    sev.tid = tm.sigev_tid;
    int id = tm.timer_id;
    if (syscall(SYS_timer_create, tm.clock_id, &sev, &id) != 0 || id != tm.timer_id) {
      int e = errno;
      prctl(kPrTimerCreateRestoreIds, kPrTimerCreateRestoreIdsOff, 0, 0, 0);
      return make_error("cannot make POSIX timer %d again (clock %d): %s", tm.timer_id, tm.clock_id,
                        id != tm.timer_id ? "it got another id" : strerror(e));
    }
    itimerspec its = to_itimerspec(tm.value_ns, tm.interval_ns);
    if (tm.value_ns && syscall(SYS_timer_settime, id, 0, &its, nullptr) != 0) {
      int e = errno;
      prctl(kPrTimerCreateRestoreIds, kPrTimerCreateRestoreIdsOff, 0, 0, 0);
      return make_error("cannot arm POSIX timer %d: %s", tm.timer_id, strerror(e));
    }
  }
  prctl(kPrTimerCreateRestoreIds, kPrTimerCreateRestoreIdsOff, 0, 0, 0);
  return {};
}

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
  CKPT_TRY(restore_process_settings(t, v.tasks.str_or_empty(t.cgroup), v.tasks.str_or_empty(t.cgroup_settings)));
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
  return restore_posix_timers(v);
}

}  // namespace ckpt::reader
