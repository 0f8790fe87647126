#include "pid_holder.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ckpt::test {

PidHolder::PidHolder(pid_t pid) {
  struct clone_args ca = {};
  ca.exit_signal = SIGCHLD;
  ca.set_tid = reinterpret_cast<__u64>(&pid);
  ca.set_tid_size = 1;
  pid_t parent = getpid();
  long made = syscall(SYS_clone3, &ca, sizeof ca);
  if (made < 0) {
    error_ = "clone3 with set_tid " + std::to_string(pid) + ": " + std::strerror(errno);
    return;
  }
  if (made == 0) {
    // A copy of a (perhaps multithreaded) test process made without
    // fork's handlers: it only makes system calls until it is killed, and
    // dies with the test should the test die first.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    for (;;) pause();
  }
  holder_ = static_cast<pid_t>(made);
}

void PidHolder::release() {
  if (holder_ <= 0) return;
  kill(holder_, SIGKILL);
  while (waitpid(holder_, nullptr, 0) < 0 && errno == EINTR) {
  }
  holder_ = -1;
}

}  // namespace ckpt::test
