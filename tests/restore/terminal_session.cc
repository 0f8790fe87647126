#include "terminal_session.h"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace ckpt::restoretest {

namespace {
double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}
}  // namespace

TerminalSession::TerminalSession(const std::vector<std::string> &argv, unsigned rows, unsigned cols,
                                 const std::string &err_path) {
  int slave = -1;
  struct winsize ws = {static_cast<unsigned short>(rows), static_cast<unsigned short>(cols), 0, 0};
  if (openpty(&master_, &slave, nullptr, nullptr, &ws) != 0) return;
  fcntl(master_, F_SETFD, FD_CLOEXEC);
  std::vector<char *> args;
  for (const std::string &a : argv) args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    setsid();
    ioctl(slave, TIOCSCTTY, 0);
    dup2(slave, 0);
    dup2(slave, 1);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0) dup2(err, 2);
    if (slave > 2) close(slave);
    if (err > 2) close(err);
    execv(args[0], args.data());
    _exit(127);
  }
  close(slave);
}

TerminalSession::~TerminalSession() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (master_ >= 0) close(master_);
}

void TerminalSession::drain(int timeout_ms) {
  struct pollfd p = {master_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return;
  char buf[4096];
  ssize_t n = read(master_, buf, sizeof buf);
  if (n > 0) output_.append(buf, size_t(n));
  else if (timeout_ms > 0) usleep(useconds_t(timeout_ms) * 1000);  // EIO: no slave open now
}

bool TerminalSession::read_until(const std::string &needle, int timeout_s) {
  double end = now_s() + timeout_s;
  while (output_.find(needle) == std::string::npos) {
    if (now_s() > end) return false;
    drain(50);
  }
  return true;
}

void TerminalSession::type(const std::string &bytes) { (void)!write(master_, bytes.data(), bytes.size()); }

struct termios TerminalSession::termios() const {
  struct termios t {};
  tcgetattr(master_, &t);
  return t;
}

int TerminalSession::wait_exit(int timeout_s) {
  double end = now_s() + timeout_s;
  for (;;) {
    int st = 0;
    pid_t got = waitpid(pid_, &st, WNOHANG);
    if (got == pid_) {
      pid_ = -1;
      drain(0);
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (now_s() > end) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return -1;
    }
    drain(20);
  }
}

}  // namespace ckpt::restoretest
