#include "freeze.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <set>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procfs.h"

namespace ckpt::writer {

using img::make_error;

FrozenProcess::FrozenProcess(FrozenProcess &&o) noexcept
    : pid_(o.pid_), pidfd_(o.pidfd_), was_stopped_(o.was_stopped_), attached_(o.attached_),
      leader_only_(o.leader_only_), cancel_(o.cancel_),
      threads_(std::move(o.threads_)) {
  o.attached_ = false;
  o.pidfd_ = -1;
}

FrozenProcess::~FrozenProcess() {
  if (attached_) (void)release();
  if (pidfd_ >= 0) close(pidfd_);
}

namespace {

using Clock = std::chrono::steady_clock;

// How long one thread may take to reach the stop we asked for. A thread
// in an uninterruptible sleep (state D: I/O on a dead NFS server, a FUSE
// request, a vfork() parent waiting for its child) ignores
// PTRACE_INTERRUPT until it wakes, possibly never, while every other
// thread is frozen. Generous, as a busy machine may be slow to schedule
// the thread (docs/DECISIONS.md).
constexpr std::chrono::seconds kStopTimeout{5};

void pause_briefly(long &ns) {
  timespec ts{0, ns};
  nanosleep(&ts, nullptr);
  ns = std::min(ns * 2, 5'000'000L);
}

}  // namespace

// Waits for tid's next stop (polling: waitpid has no timeout).
FrozenProcess::StopWait FrozenProcess::wait_for_stop(FrozenThread &t, std::chrono::milliseconds timeout,
                                                     bool cancellable) {
  const pid_t tid = t.tid;
  const auto deadline = Clock::now() + timeout;
  long pause_ns = 10'000;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(tid, &status, __WALL | WNOHANG);
    if (r < 0) {
      if (errno == EINTR) continue;
      return StopWait::Gone;
    }
    if (r == 0) {
      if (cancellable && cancel_ && cancel_->load()) return StopWait::Cancelled;
      if (Clock::now() >= deadline) return StopWait::TimedOut;
      pause_briefly(pause_ns);
      continue;
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) return StopWait::Gone;
    if (!WIFSTOPPED(status)) continue;
    int sig = WSTOPSIG(status);
    int event = status >> 16;
    if (event == PTRACE_EVENT_STOP) {
      // PTRACE_EVENT_STOP is either our PTRACE_INTERRUPT (SIGTRAP) or a
      // group-stop (SIGSTOP/SIGTSTP/SIGTTIN/SIGTTOU) under PTRACE_SEIZE.
      t.stop_signal = sig;
      t.group_stop = sig != SIGTRAP;
      return StopWait::Stopped;
    }
    if (event == PTRACE_EVENT_CLONE) {
      // The new thread is auto-attached (PTRACE_O_TRACECLONE) and will
      // report its own stop; this thread still owes us its interrupt stop.
      ptrace(PTRACE_CONT, tid, 0, 0);
      ptrace(PTRACE_INTERRUPT, tid, 0, 0);
      continue;
    }
    // A signal-delivery stop: a signal arrived before our interrupt. Hand
    // it back on resume would lose nothing, but we cannot resume without
    // letting the thread run; instead re-inject it and interrupt again. The
    // kernel keeps it pending until the thread actually returns to user
    // mode, which happens only after we detach.
    ptrace(PTRACE_CONT, tid, 0, sig);
    ptrace(PTRACE_INTERRUPT, tid, 0, 0);
  }
}

img::Expected<FrozenProcess> FrozenProcess::freeze(pid_t pid, const std::atomic<bool> *cancel, bool leader_only) {
  FrozenProcess fp;
  fp.pid_ = pid;
  fp.cancel_ = cancel;
  fp.leader_only_ = leader_only;
  auto status = read_status(pid);
  if (!status) {
    if (::kill(pid, 0) < 0 && errno == ESRCH) return make_error("no process with pid %d", pid);
    return status.error();
  }
  if (status->tgid != pid) return make_error("%d is a thread of process %d, not a process", pid, status->tgid);
  if (status->tracer_pid != 0)
    return make_error("process %d is already being traced by process %d (a debugger?)", pid, status->tracer_pid);
  auto stat = read_stat(pid);
  if (!stat) return stat.error();
  if (stat->state == 'Z' || stat->state == 'X') return make_error("process %d is a zombie", pid);
  fp.was_stopped_ = stat->state == 'T';
  fp.pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fp.pidfd_ < 0) return make_error("pidfd_open(%d): %s", pid, strerror(errno));
  Status s = fp.seize_all();
  if (!s) return s.error();
  return fp;
}

Status FrozenProcess::seize_all() {
  attached_ = true;  // from the first seize on, the destructor must detach
  std::set<pid_t> seized;
  // Threads can be created while we seize; PTRACE_O_TRACECLONE attaches
  // them automatically, and re-reading /proc/PID/task until it shows no
  // thread we have not seen closes the window before the option applied.
  for (int round = 0; round < 1000; round++) {
    auto tids = list_threads(pid_);
    if (!tids) return tids.error();
    if (tids->empty()) return make_error("process %d exited", pid_);
    bool new_thread = false;
    for (pid_t tid : *tids) {
      if (seized.count(tid) || (leader_only_ && tid != pid_)) continue;
      new_thread = true;
      // Leader only: no PTRACE_O_TRACECLONE, or a thread it was making
      // would be attached and held without our knowing.
      long options = leader_only_ ? PTRACE_O_TRACESYSGOOD : PTRACE_O_TRACECLONE | PTRACE_O_TRACESYSGOOD;
      if (ptrace(PTRACE_SEIZE, tid, 0, options) < 0) {
        int e = errno;
        if (e == ESRCH) continue;  // it exited between listing and seizing
        if (e == EPERM) {
          // EPERM also means "already traced by us" (a thread auto-attached
          // through PTRACE_O_TRACECLONE) or "exiting": neither is a refusal.
          auto st = read_status(pid_, tid);
          if (st && st->tracer_pid == getpid()) {
            seized.insert(tid);
            FrozenThread t;
            t.tid = tid;
            threads_.push_back(t);
            continue;  // it reports its own PTRACE_EVENT_STOP
          }
          auto ts = read_stat(pid_, tid);
          if (!ts || ts->state == 'Z' || ts->state == 'X') {
            if (tid == pid_) return make_error("process %d exited", pid_);
            continue;
          }
          if (seized.empty()) return make_error("not permitted to trace process %d (ptrace: %s)", pid_, strerror(e));
        }
        return make_error("cannot seize thread %d of process %d: %s", tid, pid_, strerror(e));
      }
      seized.insert(tid);
      FrozenThread t;
      t.tid = tid;
      threads_.push_back(t);
      if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0 && errno != ESRCH)
        return make_error("cannot interrupt thread %d: %s", tid, strerror(errno));
    }
    // Collect stops of everything seized so far.
    for (size_t i = 0; i < threads_.size();) {
      FrozenThread &t = threads_[i];
      if (t.stop_signal) {
        i++;
        continue;
      }
      switch (wait_for_stop(t, kStopTimeout, true)) {
        case StopWait::Stopped:
          i++;
          continue;
        case StopWait::Gone:
          seized.erase(t.tid);
          threads_.erase(threads_.begin() + i);
          continue;
        case StopWait::Cancelled:
          return make_error("interrupted while freezing process %d", pid_);
        case StopWait::TimedOut: {
          auto ts = read_stat(pid_, t.tid);
          char state = ts ? ts->state : '?';
          t.stuck = true;
          return make_error("thread %d of process %d did not stop within %lld s (state %c%s); nothing was dumped", t.tid,
                            pid_, (long long)kStopTimeout.count(), state,
                            state == 'D' ? ": in an uninterruptible sleep, e.g. waiting for I/O or for a vfork child"
                                         : "");
        }
      }
    }
    if (!new_thread) break;
  }
  if (threads_.empty()) return make_error("process %d exited while being frozen", pid_);
  std::sort(threads_.begin(), threads_.end(), [&](const FrozenThread &a, const FrozenThread &b) {
    if ((a.tid == pid_) != (b.tid == pid_)) return a.tid == pid_;
    return a.tid < b.tid;
  });
  if (threads_[0].tid != pid_) return make_error("the main thread of process %d has exited", pid_);
  return {};
}

Status FrozenProcess::release() {
  if (!attached_) return {};
  attached_ = false;
  Status result;
  for (FrozenThread &t : threads_) {
    // A freeze that failed half-way may hold threads that were seized and
    // interrupted but whose stop we never collected; PTRACE_DETACH needs
    // the thread in a ptrace stop (else ESRCH), so collect it first. A
    // thread that never stops (stuck in state D) cannot be detached from
    // here: the kernel detaches it when this tracer thread exits.
    if (!t.stop_signal && !t.stuck &&
        wait_for_stop(t, std::chrono::milliseconds(1000), false) != StopWait::Stopped)
      continue;
    if (!t.stop_signal) continue;
    // Detached from a group-stop, the thread goes back into it (see
    // await_group_stop); from our own interrupt stop it resumes. Either
    // way: as we found it.
    if (ptrace(PTRACE_DETACH, t.tid, 0, 0) < 0 && errno != ESRCH && result)
      result = make_error("cannot detach from thread %d: %s", t.tid, strerror(errno));
  }
  await_group_stop();
  return result;
}

// Kernel quirk: PTRACE_DETACH from a thread in a group-stop does not leave
// it stopped in place. __ptrace_unlink() sets JOBCTL_STOP_PENDING and
// wakes the thread, which is runnable (state R) until it gets a CPU and
// re-enters the group stop in do_signal_stop(), before it ever returns to
// user mode. On a busy machine that takes long enough for the caller to
// see a "running" process after the dump. Waiting here until /proc shows
// 'T' again keeps "a stopped process stays stopped" true when the dump
// returns. A SIGCONT meanwhile legitimately resumes it: hence the bound
// and no error.
void FrozenProcess::await_group_stop() const {
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  long pause_ns = 10'000;
  for (const FrozenThread &t : threads_) {
    if (!t.group_stop) continue;
    for (;;) {
      auto st = read_stat(pid_, t.tid);
      if (!st || st->state == 'T' || st->state == 't' || st->state == 'Z' || st->state == 'X') break;
      if (Clock::now() >= deadline) return;
      pause_briefly(pause_ns);
    }
  }
}

Status FrozenProcess::kill() {
  if (pidfd_ >= 0 && syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0) < 0 && errno != ESRCH)
    return make_error("cannot kill process %d: %s", pid_, strerror(errno));
  // SIGKILL takes effect asynchronously, and a killed tracee does not
  // finish exiting until its tracer (we) collects its exit (ptrace(2): a
  // traced thread's death is reported to the tracer first): reap each
  // thread's exit here, bounded, so that once dump --kill returns the
  // process is gone but for its parent's wait(), whose pid a restore on
  // this host (`dump --kill -o - | restore -`) may need at once.
  // The leader's exit is reported only after every other thread's.
  if (attached_) {
    attached_ = false;
    std::vector<pid_t> pending;
    for (const FrozenThread &t : threads_) pending.push_back(t.tid);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pending.empty() && std::chrono::steady_clock::now() < deadline) {
      std::erase_if(pending, [](pid_t tid) {
        int status = 0;
        pid_t r = waitpid(tid, &status, __WALL | WNOHANG);
        return (r < 0 && errno != EINTR) || (r == tid && (WIFEXITED(status) || WIFSIGNALED(status)));
      });
      if (!pending.empty()) usleep(500);
    }
    // Any left (the deadline): the kernel detaches them when we exit.
  }
  return {};
}

}  // namespace ckpt::writer
