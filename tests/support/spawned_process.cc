#include "spawned_process.h"

#include "file_size.h"

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
#include <sys/wait.h>
#include <time.h>

extern char **environ;

namespace ckpt::test {

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

SpawnedProcess::SpawnedProcess(const std::vector<std::string> &argv, const Options &o) {
  int out[2], in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0) {
    error_ = std::string("pipe: ") + strerror(errno);
    return;
  }
  if (o.stdin_pipe && pipe2(in, O_CLOEXEC) != 0) {
    error_ = std::string("pipe: ") + strerror(errno);
    close(out[0]);
    close(out[1]);
    return;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (o.stdin_pipe)
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  else
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (o.stdout_file.empty())
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  else
    posix_spawn_file_actions_addopen(&fa, 1, o.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!o.inherit_stderr && o.log.empty())
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  else if (!o.inherit_stderr)
    posix_spawn_file_actions_addopen(&fa, 2, o.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (!o.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, o.cwd.c_str());
  // Nothing else of ours: a test runner's fds (ctest keeps a log open
  // without O_CLOEXEC, and writes to it) would be the program's state too.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  std::vector<char *> args;
  for (const std::string &a : argv) args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  int rc = posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  if (in[0] >= 0) close(in[0]);
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
  if (!o.stdout_file.empty()) {
    ready_ = true;  // no ready line to wait for: the caller polls the file
    return;
  }
  std::string buf;
  double deadline = now_s() + o.ready_timeout_s;
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
    if (n <= 0) continue;
    char chunk[4096];
    ssize_t k = read(out_, chunk, sizeof chunk);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      error_ = argv[0] + " exited before printing \"ready\"; stdout: " + buf;
      if (!o.log.empty() && !o.inherit_stderr) error_ += "; stderr: " + read_text_file(o.log);
      return;
    }
    buf.append(chunk, size_t(k));
  }
}

SpawnedProcess::~SpawnedProcess() {
  if (pidfd_ >= 0)
    syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
  else if (pid_ > 0 && !reaped_.load())
    kill(pid_, SIGKILL);  // no pidfd: the reaper has not run yet, pid is ours
  if (reaper_.joinable()) reaper_.join();
  if (pidfd_ >= 0) close(pidfd_);
  if (out_ >= 0) close(out_);
  if (in_ >= 0) close(in_);
}

std::string SpawnedProcess::value(const std::string &key) const {
  for (const std::string &l : lines_)
    if (l.size() > key.size() && l.compare(0, key.size(), key) == 0 && l[key.size()] == ' ')
      return l.substr(key.size() + 1);
  return "";
}

bool SpawnedProcess::write_stdin(const std::string &bytes) {
  return in_ >= 0 && write(in_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
}

bool SpawnedProcess::stop() {
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

bool SpawnedProcess::wait_exit(int *status, int timeout_s) {
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

std::string read_text_file(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool write_text_file(const std::string &path, const std::string &data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  return static_cast<bool>(f);
}

long long file_size(const std::string &path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : -1;
}

bool flip_byte(const std::string &path, long long offset) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  unsigned char b = 0;
  bool ok = pread(fd, &b, 1, offset) == 1;
  b ^= 0x40;
  ok = ok && pwrite(fd, &b, 1, offset) == 1;
  close(fd);
  return ok;
}

std::vector<std::string> split_on(const std::string &text, char separator) {
  std::vector<std::string> pieces;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find(separator, at);
    if (end == std::string::npos) end = text.size();
    pieces.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return pieces;
}

std::vector<std::string> split_lines(const std::string &text) { return split_on(text, '\n'); }

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

bool pid_exists(pid_t pid) {
  struct stat st;
  return stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

// The fields after "pid (comm) ": comm may hold spaces and parentheses.
static std::string stat_fields(pid_t pid) {
  std::string s = read_text_file("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = s.rfind(')');
  return paren == std::string::npos || paren + 2 >= s.size() ? "" : s.substr(paren + 2);
}

char proc_state(pid_t pid) {
  std::string f = stat_fields(pid);
  return f.empty() ? 0 : f[0];
}

pid_t proc_ppid(pid_t pid) {
  std::string f = stat_fields(pid);
  if (f.size() < 3) return -1;
  return static_cast<pid_t>(std::atoi(f.c_str() + 2));
}

std::vector<pid_t> task_tids(pid_t pid) {
  std::vector<pid_t> tids;
  for (const std::string &name : dir_listing("/proc/" + std::to_string(pid) + "/task"))
    tids.push_back(static_cast<pid_t>(std::atoi(name.c_str())));
  std::sort(tids.begin(), tids.end());
  return tids;
}

bool wait_for_state(pid_t pid, char state, int timeout_s) {
  return wait_until([&] { return proc_state(pid) == state; }, timeout_s);
}

bool all_threads_in_state(pid_t pid, char state) {
  std::vector<pid_t> tids = task_tids(pid);
  return !tids.empty() && std::all_of(tids.begin(), tids.end(), [&](pid_t t) { return proc_state(t) == state; });
}

std::string thread_states(pid_t pid) {
  std::string out;
  for (pid_t tid : task_tids(pid)) {
    char s = proc_state(tid);
    out += (out.empty() ? "" : ", ") + std::to_string(tid) + " " + (s ? std::string(1, s) : "gone");
  }
  return out.empty() ? "no threads" : out;
}

int tracer_pid(pid_t pid) {
  std::string s = read_text_file("/proc/" + std::to_string(pid) + "/status");
  size_t at = s.find("\nTracerPid:");
  if (at == std::string::npos) return -1;
  return std::atoi(s.c_str() + at + 11);
}

bool wait_child_exit(pid_t pid, int *status, int timeout_s) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return false;
  double deadline = now_s() + timeout_s;
  bool exited = false;
  for (;;) {
    pollfd p{pidfd, POLLIN, 0};  // readable once the process has exited
    double left = deadline - now_s();
    if (left <= 0) break;
    int n = poll(&p, 1, static_cast<int>(left * 1000) + 1);
    if (n > 0) {
      exited = true;
      break;
    }
    if (n < 0 && errno != EINTR) break;
  }
  close(pidfd);
  if (!exited) return false;
  while (waitpid(pid, status, 0) < 0)
    if (errno != EINTR) return false;
  return true;
}

}  // namespace ckpt::test
