#include "lazy_guard.h"

#include "fd_message.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <algorithm>
#include <string>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace ckpt::reader {

namespace {

// The children of pid, from /proc/PID/task/*/children.
std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  std::string task = "/proc/" + std::to_string(pid) + "/task";
  DIR *d = opendir(task.c_str());
  if (!d) return out;
  while (dirent *e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    FILE *f = std::fopen((task + "/" + e->d_name + "/children").c_str(), "re");
    if (!f) continue;
    int child;
    while (std::fscanf(f, "%d", &child) == 1) out.push_back(child);
    std::fclose(f);
  }
  closedir(d);
  return out;
}

// The restored process and everything it forked since (each may be waiting
// on a page that will never come), children first listed, then killed:
// killing the parent first would reparent its children out of our reach.
void kill_tree(int pidfd, pid_t pid) {
  // Gone already (it exited, and imgtool then killed the helper): its pid
  // may be another process's by now. The pidfd tells.
  if (pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) < 0) return;
  std::vector<pid_t> tree = {pid};
  for (size_t i = 0; i < tree.size() && tree.size() < 100000; i++)
    for (pid_t c : children_of(tree[i])) tree.push_back(c);
  if (pidfd < 0 || syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) < 0) kill(pid, SIGKILL);
  for (size_t i = 1; i < tree.size(); i++) kill(tree[i], SIGKILL);
}

[[noreturn]] void guard(int sock, int pidfd, pid_t pid) {
  std::vector<int> held;  // the userfaultfds: open as long as we live
  for (;;) {
    FdMessage m;
    ssize_t n = recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n == 1 && m.byte == 'f') _exit(0);
    if (n == 1) {
      cmsghdr *c = CMSG_FIRSTHDR(&m.msg);
      int fd;
      if (c && c->cmsg_type == SCM_RIGHTS) {
        std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
        held.push_back(fd);
      }
      continue;
    }
    // EOF (or an error) without 'f': the helper died with pages missing.
    kill_tree(pidfd, pid);
    _exit(1);
  }
}

}  // namespace

// Forked from imgtool, the guard and the helper would otherwise hold
// imgtool's fds, among them its output (a reader of imgtool's stdout would
// wait for them) and its end of the helper's go socket (the helper would
// never see imgtool's end close).
void keep_only(std::initializer_list<int *> fds) {
  std::vector<int> keep;
  for (int *fd : fds) {
    if (*fd < 0) continue;
    if (*fd < 3) *fd = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    keep.push_back(*fd);
  }
  std::sort(keep.begin(), keep.end());
  unsigned from = 3;
  for (int fd : keep) {
    if (static_cast<unsigned>(fd) > from) close_range(from, static_cast<unsigned>(fd) - 1, 0);
    from = static_cast<unsigned>(fd) + 1;
  }
  close_range(from, ~0u, 0);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd < 3 && null >= 0; fd++) dup2(null, fd);
  if (null > 2) close(null);
}

pid_t fork_lazy_guard(int uffd, int process, pid_t pid, int *helper_end) {
  *helper_end = -1;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return -1;
  pid_t g = fork();
  if (g < 0) {
    close(sv[0]);
    close(sv[1]);
    return -1;
  }
  if (g == 0) {
    // `uffd` stays open here: the guard's copy of it; `process` to kill.
    int sock = sv[1];
    keep_only({&sock, &uffd, &process});
    // Nor the terminal's signals, as the helper (lazy_pages.cc).
    setpgid(0, 0);
    guard(sock, process, pid);
  }
  close(sv[1]);
  *helper_end = sv[0];
  return g;
}

void LazyGuard::hold(int child_uffd) {
  if (sock_ < 0) return;
  FdMessage m;
  m.byte = 'u';
  cmsghdr *c = CMSG_FIRSTHDR(&m.msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &child_uffd, sizeof(int));
  while (sendmsg(sock_, &m.msg, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

void LazyGuard::finished() {
  if (sock_ < 0) return;
  while (write(sock_, "f", 1) < 0 && errno == EINTR) {
  }
  close(sock_);
  sock_ = -1;
}

}  // namespace ckpt::reader
