// A forked child process for tests that read another process's state
// (the writer tests; a program started by exec is a SpawnedProcess).
// The child runs a body that sets up state, then talks to the test over two
// pipes, one line per reply; the test never sleeps, it blocks on the
// child's replies. The child dies with the test (PR_SET_PDEATHSIG, and EOF
// on its command pipe) and is killed and reaped when the Child is destroyed.
#pragma once

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <string>
#include <string_view>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ckpt::test {

inline bool write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    s.remove_prefix(size_t(n));
  }
  return true;
}

/// One '\n'-terminated line without the '\n'; at EOF, what was read so far
/// prefixed "EOF:" so a test failure shows that the child died.
inline std::string read_line(int fd) {
  std::string line;
  for (;;) {
    char c;
    ssize_t n = read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "EOF:" + line;
    if (c == '\n') return line;
    line += c;
  }
}

/// In the child: report what failed, with errno, and exit.
[[noreturn]] inline void child_fail(int out, const char *what, int line) {
  int e = errno;
  dprintf(out, "FAIL line %d: %s: %s\n", line, what, strerror(e));
  _exit(1);
}
#define CHILD_CHECK(cond, out)                                   \
  do {                                                           \
    if (!(cond)) ckpt::test::child_fail((out), #cond, __LINE__);  \
  } while (0)

class Child {
 public:
  /// Forks; the child runs body(in, out) and exits when it returns. `in`
  /// carries command bytes from the test, `out` carries reply lines.
  explicit Child(const std::function<void(int in, int out)> &body) {
    int cmd[2], rep[2];
    if (pipe2(cmd, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0) return;
    pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      close(cmd[1]);
      close(rep[0]);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      body(cmd[0], rep[1]);
      _exit(0);
    }
    close(cmd[0]);
    close(rep[1]);
    to_child_ = cmd[1];
    from_child_ = rep[0];
  }
  Child(const Child &) = delete;
  Child &operator=(const Child &) = delete;
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    if (to_child_ >= 0) close(to_child_);
    if (from_child_ >= 0) close(from_child_);
  }

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0 && to_child_ >= 0; }

  std::string reply() { return read_line(from_child_); }
  std::string request(char cmd) {
    if (!write_all(to_child_, std::string_view(&cmd, 1))) return "EOF: write failed";
    return reply();
  }

 private:
  pid_t pid_ = -1;
  int to_child_ = -1, from_child_ = -1;
};

/// In the child: waits for commands, answering each with serve(cmd); returns
/// when the test closes the command pipe.
template <typename Serve>
void serve_commands(int in, int out, Serve serve) {
  for (;;) {
    char c;
    ssize_t n = read(in, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    std::string r = serve(c);
    write_all(out, r + "\n");
  }
}

}  // namespace ckpt::test

// The name the writer tests used before this header moved to tests/support
// (kept for branches written against it).
namespace ckpt_test = ckpt::test;
