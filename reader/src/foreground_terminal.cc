// ForegroundTerminal (foreground_terminal.h): imgtool restore as the
// shell of the job it restores.
#include "foreground_terminal.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <ckpt/img/fd_kinds.h>

namespace ckpt::reader {

using namespace img;

namespace {

// The root's controlling terminal as dumped: a reconnected fd
// (kFdTerminal) whose TtyState says it was the controlling one.
std::optional<std::pair<const FdRecord *, TtyState>> dumped_controlling_terminal(const CkptView &v) {
  if (v.tasks.records.empty()) return std::nullopt;
  i32 pid = v.tasks.records[0].pid;
  for (const FdRecord &r : v.fds.records) {
    if (r.pid != pid || !(r.flags & kFdTerminal) || FdType(r.type) != FdType::CharDevice || !r.state.length) continue;
    auto s = fd_state<TtyState>(v.fds, r);
    if (s && (s->flags & kTtyControlling)) return std::pair{&r, *s};
  }
  return std::nullopt;
}

// tcsetpgrp and TCSETS2 from a background group would stop us with
// SIGTTOU (the kernel's tty_check_change): blocked around them.
struct TtouBlocked {
  sigset_t old;
  TtouBlocked() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTTOU);
    sigprocmask(SIG_BLOCK, &s, &old);
  }
  ~TtouBlocked() { sigprocmask(SIG_SETMASK, &old, nullptr); }
};

}  // namespace

Status take_controlling_terminal(const CkptView &v) {
  auto ctty = dumped_controlling_terminal(v);
  if (!ctty) return {};
  // Steals it from imgtool's session (arg 1, CAP_SYS_ADMIN): imgtool leads
  // that session and takes it back when this session ends.
  if (ioctl(ctty->first->fd, TIOCSCTTY, 1) != 0)
    return make_error("cannot make the restoring terminal (fd %d) the controlling terminal: %s", ctty->first->fd,
                      strerror(errno));
  return {};
}

ForegroundTerminal ForegroundTerminal::for_image(const CkptView &v) {
  ForegroundTerminal t;
  auto ctty = dumped_controlling_terminal(v);
  if (!ctty) return t;
  // Our controlling terminal, on one of our standard streams. Without
  // one the program gets our streams as before (decision 20).
  for (int i = 0; i < 3; i++)
    if (isatty(i) && tcgetsid(i) == getsid(0)) {
      t.fd_ = i;
      break;
    }
  if (t.fd_ < 0 || ioctl(t.fd_, kTcgets2, &t.ours_) != 0) {
    t.fd_ = -1;
    return t;
  }
  const TaskRecord &root = v.tasks.records[0];
  t.dumped_ = ctty->second;
  t.program_ = termios_of(t.dumped_);
  t.foreground_ = t.dumped_.flags & kTtyForeground;
  t.root_leads_session_ = root.sid == root.pid;
  if (t.root_leads_session_) {
    t.root_takes_ = getsid(0) == getpid();
    if (!t.root_takes_)
      t.warning_ = "pid " + std::to_string(root.pid) +
                   " leads its session again, without a controlling terminal: this terminal belongs to the calling "
                   "shell's session (restore as the terminal's session leader, e.g. `exec imgtool restore`, to give "
                   "it the terminal)";
  }
  return t;
}

void ForegroundTerminal::give(pid_t root) {
  if (!active()) return;
  root_ = root;
  TtouBlocked blocked;
  ioctl(fd_, kTcsets2, &program_);
  if (root_leads_session_) {
    // It took the terminal itself (take_controlling_terminal), with its
    // group in the foreground; or it has none (warning_).
    program_pgrp_ = root_takes_ ? root : 0;
    return;
  }
  if (!foreground_) return;  // a background job at the dump stays one
  program_pgrp_ = getpgid(root);
  if (program_pgrp_ > 0 && program_pgrp_ != getpgrp()) tcsetpgrp(fd_, program_pgrp_);
}

void ForegroundTerminal::tell_to_redraw() {
  if (!active() || program_pgrp_ <= 0) return;
  // Always, not only when the size differs: the new terminal's screen does
  // not hold what the program drew on the old one (decision 148).
  // In our own group (it did not lead one) only the root is told: we
  // would forward our own copy to it (forward_signal) as well.
  if (program_pgrp_ != getpgrp()) kill(-program_pgrp_, SIGWINCH);
  else kill(root_, SIGWINCH);
}

void ForegroundTerminal::take_back() {
  if (!active()) return;
  TtouBlocked blocked;
  if (root_takes_) {
    // The restored session ended (its leader exited): the terminal has no
    // session now, and we lead ours.
    ioctl(fd_, TIOCSCTTY, 0);
  } else if (program_pgrp_ > 0 && program_pgrp_ != getpgrp()) {
    tcsetpgrp(fd_, getpgrp());
  }
  ioctl(fd_, kTcsets2, &ours_);
}

Expected<int> ForegroundTerminal::wait(pid_t root) {
  // A job of ours: its group is in our session but not ours.
  bool job = active() && !root_leads_session_ && program_pgrp_ > 0 && program_pgrp_ != getpgrp();
  for (;;) {
    int st = 0;
    if (waitpid(root, &st, WUNTRACED) < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      if (active()) take_back();
      return make_error("waitpid: %s", strerror(e));
    }
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
      if (active()) take_back();
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    // Only the terminal's stops: a SIGSTOP (a process dumped stopped,
    // --leave-stopped) is not the user's Ctrl-Z.
    if (!WIFSTOPPED(st) || !job) continue;
    int sig = WSTOPSIG(st);
    if (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU) continue;
    // Stopped (Ctrl-Z, or SIGTTIN/SIGTTOU): as a shell does, keep its
    // termios, take the terminal back with ours, and stop ourselves so
    // that the shell that ran us sees the job stop (decision 149). Our
    // own group orphaned (we lead our session: no shell to return to)
    // discards SIGTSTP, and the program goes on at once.
    ioctl(fd_, kTcgets2, &program_);
    take_back();
    raise(SIGTSTP);
    // Continued: `fg` gave us the foreground; `bg` did not.
    TtouBlocked blocked;
    if (tcgetpgrp(fd_) == getpgrp()) {
      ioctl(fd_, kTcsets2, &program_);
      tcsetpgrp(fd_, program_pgrp_);
    }
    kill(-program_pgrp_, SIGCONT);
  }
}

}  // namespace ckpt::reader
