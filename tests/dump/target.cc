#include "target.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <spawn.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

namespace ckpt::dumptest {

std::string imgtool() {
  const char *env = std::getenv("CKPT_TEST_IMGTOOL");
  return env && *env ? env : IMGTOOL_PATH;
}

static double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

Target::Target(const std::vector<std::string> &argv, int ready_timeout_s) {
  int out[2], in[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    error_ = std::string("pipe: ") + strerror(errno);
    return;
  }
  if (pipe2(in, O_CLOEXEC) != 0) {
    error_ = std::string("pipe: ") + strerror(errno);
    close(out[0]);
    close(out[1]);
    return;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  std::vector<char *> args;
  for (const std::string &a : argv) args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  close(in[0]);
  out_ = out[0];
  in_ = in[1];
  if (rc != 0) {
    pid_ = -1;
    error_ = "posix_spawn " + argv[0] + ": " + strerror(rc);
    return;
  }
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd_ < 0) error_ = std::string("pidfd_open: ") + strerror(errno);
  pid_t pid = pid_;
  reaper_ = std::thread([this, pid] {
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
      if (errno != EINTR) {
        st = -1;
        break;
      }
    }
    status_ = st;
    reaped_.store(true);
  });
  if (!error_.empty()) return;

  // Read lines until "ready", bounded by the timeout.
  std::string buf;
  double deadline = now_s() + ready_timeout_s;
  for (;;) {
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (line == "ready") {
        ready_ = true;
        return;
      }
      lines_.push_back(line);
    }
    double left = deadline - now_s();
    if (left <= 0) {
      error_ = "timed out waiting for \"ready\" from " + argv[0];
      return;
    }
    pollfd p{out_, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(left * 1000) + 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    char chunk[4096];
    ssize_t k = read(out_, chunk, sizeof chunk);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      error_ = argv[0] + " exited (EOF on its stdout) before printing \"ready\"; got: " + buf;
      return;
    }
    buf.append(chunk, size_t(k));
  }
}

Target::~Target() {
  if (pidfd_ >= 0) {
    syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
  } else if (pid_ > 0 && !reaped_.load()) {
    kill(pid_, SIGKILL);  // no pidfd: the reaper has not run yet, pid is ours
  }
  if (reaper_.joinable()) reaper_.join();
  if (pidfd_ >= 0) close(pidfd_);
  if (out_ >= 0) close(out_);
  if (in_ >= 0) close(in_);
}

std::string Target::value(const std::string &key) const {
  for (const std::string &l : lines_)
    if (l.size() > key.size() && l.compare(0, key.size(), key) == 0 && l[key.size()] == ' ')
      return l.substr(key.size() + 1);
  return "";
}

bool Target::stop() {
  if (pidfd_ < 0) return false;
  if (syscall(SYS_pidfd_send_signal, pidfd_, SIGSTOP, nullptr, 0) != 0) return false;
  // The leader shows 'T' before every other thread has entered the group
  // stop; a thread still running would give gcore and the dump different
  // registers. Wait for each one (/proc/TID/stat works for any tid).
  if (!wait_for_state(pid_, 'T')) return false;
  for (pid_t tid : task_tids(pid_))
    if (!wait_for_state(tid, 'T')) return false;
  return true;
}

bool Target::wait_exit(int *status, int timeout_s) {
  if (pidfd_ < 0) return false;
  double deadline = now_s() + timeout_s;
  while (!reaped_.load()) {
    double left = deadline - now_s();
    if (left <= 0) return false;
    pollfd p{pidfd_, POLLIN, 0};  // readable once the process has exited
    int n = poll(&p, 1, static_cast<int>(std::min(left, 0.05) * 1000) + 1);
    if (n < 0 && errno != EINTR) return false;
  }
  if (reaper_.joinable()) reaper_.join();
  *status = status_;
  return true;
}

static bool read_text(const std::string &path, std::string &out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

char proc_state(pid_t pid) {
  std::string s;
  if (!read_text("/proc/" + std::to_string(pid) + "/stat", s)) return 0;
  size_t paren = s.rfind(')');
  if (paren == std::string::npos || paren + 2 >= s.size()) return 0;
  return s[paren + 2];
}

int tracer_pid(pid_t pid) {
  std::string s;
  if (!read_text("/proc/" + std::to_string(pid) + "/status", s)) return -1;
  size_t at = s.find("\nTracerPid:");
  if (at == std::string::npos) return -1;
  return std::atoi(s.c_str() + at + 11);
}

std::vector<pid_t> task_tids(pid_t pid) {
  std::vector<pid_t> tids;
  for (const std::string &name : dir_listing("/proc/" + std::to_string(pid) + "/task"))
    tids.push_back(static_cast<pid_t>(std::atoi(name.c_str())));
  std::sort(tids.begin(), tids.end());
  return tids;
}

bool wait_for_state(pid_t pid, char state, int timeout_s) {
  double deadline = now_s() + timeout_s;
  for (;;) {
    if (proc_state(pid) == state) return true;
    if (now_s() > deadline) return false;
    timespec ts{0, 2 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
}

bool wait_all_in_syscall(pid_t pid, long nr, int timeout_s) {
  double deadline = now_s() + timeout_s;
  for (;;) {
    std::vector<pid_t> tids = task_tids(pid);
    bool all = !tids.empty();
    for (pid_t tid : tids) {
      std::string s = read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
      if (s.empty() || s == "running\n" || std::atol(s.c_str()) != nr) all = false;
    }
    if (all) return true;
    if (now_s() > deadline) return false;
    timespec ts{0, 2 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
}

bool read_remote_u64(pid_t pid, unsigned long addr, unsigned long *value) {
  iovec local{value, sizeof *value};
  iovec remote{reinterpret_cast<void *>(addr), sizeof *value};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(sizeof *value);
}

std::vector<std::string> dir_listing(const std::string &dir) {
  std::vector<std::string> names;
  DIR *d = opendir(dir.c_str());
  if (!d) return names;
  while (dirent *e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string read_file(const std::string &path) {
  std::string s;
  read_text(path, s);
  return s;
}

bool write_file(const std::string &path, const std::string &data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  return static_cast<bool>(f);
}

bool path_exists(const std::string &path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

test::RunResult run_merged(const std::vector<std::string> &argv, int hang_guard_s) {
  std::vector<std::string> sh = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1"};
  sh.insert(sh.end(), argv.begin(), argv.end());
  return test::run(sh, hang_guard_s);
}

std::string unified_diff(const std::string &a, const std::string &b, const std::string &label_a,
                         const std::string &label_b) {
  test::TempDir tmp;
  std::string fa = tmp.file("a"), fb = tmp.file("b");
  write_file(fa, a);
  write_file(fb, b);
  test::RunResult r = test::run({"diff", "-u", "--label", label_a, "--label", label_b, fa, fb});
  return r.out;
}

std::vector<std::string> split_lines(const std::string &text) {
  std::vector<std::string> lines;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return lines;
}

bool cpu_has_flag(const std::string &flag) {
  std::string info = read_file("/proc/cpuinfo");
  for (const std::string &line : split_lines(info)) {
    if (line.compare(0, 5, "flags") != 0) continue;
    std::istringstream ss(line.substr(line.find(':') + 1));
    std::string f;
    while (ss >> f)
      if (f == flag) return true;
    return false;
  }
  return false;
}

}  // namespace ckpt::dumptest
