#include "restore_common.h"

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
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

namespace ckpt::restoretest {

std::string imgtool() {
  const char *env = std::getenv("CKPT_TEST_IMGTOOL");
  return env && *env ? env : IMGTOOL_PATH;
}

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

Program::Program(const std::vector<std::string> &argv, const Options &o) {
  int out[2], in[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0) {
    error_ = std::string("pipe: ") + strerror(errno);
    return;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  if (o.stdout_file.empty())
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  else
    posix_spawn_file_actions_addopen(&fa, 1, o.stdout_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (o.log.empty())
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  else
    posix_spawn_file_actions_addopen(&fa, 2, o.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (!o.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, o.cwd.c_str());
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
  if (!o.stdout_file.empty()) {
    // No ready line to wait for: the caller polls the file.
    ready_ = true;
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
      if (!o.log.empty()) error_ += "; stderr: " + read_file(o.log);
      return;
    }
    buf.append(chunk, size_t(k));
  }
}

Program::~Program() {
  if (pidfd_ >= 0)
    syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
  else if (pid_ > 0 && !reaped_.load())
    kill(pid_, SIGKILL);
  if (reaper_.joinable()) reaper_.join();
  if (pidfd_ >= 0) close(pidfd_);
  if (out_ >= 0) close(out_);
  if (in_ >= 0) close(in_);
}

std::string Program::value(const std::string &key) const {
  for (const std::string &l : lines_)
    if (l.size() > key.size() && l.compare(0, key.size(), key) == 0 && l[key.size()] == ' ')
      return l.substr(key.size() + 1);
  return "";
}

bool Program::write_stdin(const std::string &bytes) {
  return write(in_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
}

bool Program::wait_exit(int *status, int timeout_s) {
  if (pidfd_ < 0) return false;
  double deadline = now_s() + timeout_s;
  while (!reaped_.load()) {
    double left = deadline - now_s();
    if (left <= 0) return false;
    pollfd p{pidfd_, POLLIN, 0};
    int n = poll(&p, 1, static_cast<int>(std::min(left, 0.05) * 1000) + 1);
    if (n < 0 && errno != EINTR) return false;
  }
  if (reaper_.joinable()) reaper_.join();
  *status = status_;
  return true;
}

RunResult dump(pid_t pid, const std::string &image, const std::vector<std::string> &extra) {
  std::vector<std::string> argv = {imgtool(), "dump", "--pid", std::to_string(pid), "-o", image};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return test::run(argv, 120);
}

RunResult restore(const std::string &image, const std::vector<std::string> &extra, int hang_guard_s) {
  std::vector<std::string> argv = {imgtool(), "restore"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(image);
  return test::run(argv, hang_guard_s);
}

void expect_one_line_failure(const RunResult &r, const std::string &needle) {
  ASSERT_TRUE(r.started);
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(r.exited) << r.status();
  EXPECT_NE(r.exit_code, 0) << "stderr: " << r.err;
  std::vector<std::string> lines = r.err_lines();
  ASSERT_EQ(lines.size(), 1u) << "stderr:\n" << r.err;
  EXPECT_EQ(r.err.back(), '\n');
  EXPECT_EQ(lines[0].rfind("imgtool restore: ", 0), 0u) << lines[0];
  if (!needle.empty()) {
    EXPECT_NE(test::lower(lines[0]).find(test::lower(needle)), std::string::npos)
        << "expected \"" << needle << "\" in: " << lines[0];
  }
  EXPECT_EQ(r.out, "") << "stdout should be empty";
}

bool pid_exists(pid_t pid) {
  struct stat st;
  return stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

static std::string stat_fields(pid_t pid) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = s.rfind(')');
  return paren == std::string::npos ? "" : s.substr(paren + 2);
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

std::string read_file(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool write_file(const std::string &path, const std::string &data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
  return static_cast<bool>(f);
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

// Our children, from /proc/self/task/*/children.
static std::vector<pid_t> our_children() {
  std::vector<pid_t> kids;
  DIR *d = opendir("/proc/self/task");
  if (!d) return kids;
  while (dirent *e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::istringstream ss(read_file(std::string("/proc/self/task/") + e->d_name + "/children"));
    pid_t p;
    while (ss >> p) kids.push_back(p);
  }
  closedir(d);
  return kids;
}

void RestoreTest::SetUp() {
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0) << strerror(errno);
  ASSERT_FALSE(tmp_.path().empty());
}

void RestoreTest::TearDown() {
  program_.reset();
  // Whatever is still our child (a restored process orphaned by imgtool,
  // which we adopted as subreaper) is killed and reaped.
  for (int round = 0; round < 3; round++) {
    std::vector<pid_t> kids = our_children();
    for (pid_t p : kids) {
      if (fail_on_leftovers_ && proc_state(p) != 'Z') ADD_FAILURE() << "process " << p << " was left running; killing it";
      kill(p, SIGKILL);
    }
    for (pid_t p : kids) {
      int st;
      while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
      }
    }
    if (kids.empty()) break;
  }
  int st;
  while (waitpid(-1, &st, WNOHANG) > 0) {
  }
}

void RestoreTest::start_argv(const std::vector<std::string> &argv, const Program::Options &options) {
  program_ = std::make_unique<Program>(argv, options);
  ASSERT_TRUE(program_->ready()) << program_->error();
  pid_ = program_->pid();
}

void RestoreTest::start(const std::string &program, const std::vector<std::string> &extra) {
  std::vector<std::string> argv = {program, go_path(), dir()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Program::Options o;
  o.log = log_path();
  start_argv(argv, o);
}

void RestoreTest::dump_kill(const std::vector<std::string> &extra) {
  ASSERT_TRUE(program_);
  std::vector<std::string> args = {"--kill"};
  args.insert(args.end(), extra.begin(), extra.end());
  RunResult r = dump(pid_, image_path(), args);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << "dump: " << r.status() << "\n" << r.err;
  int status = 0;
  ASSERT_TRUE(program_->wait_exit(&status, 10)) << "still alive after dump --kill";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "wait status 0x" << std::hex << status << "\nstderr:\n" << log();
  ASSERT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " still exists after the dump";
}

void RestoreTest::go() { ASSERT_TRUE(write_file(go_path(), "go\n")); }

void RestoreTest::restore_expect(int code, const std::vector<std::string> &extra) {
  ASSERT_NO_FATAL_FAILURE(go());
  if (pass_file_.empty()) pass_file_ = log_path();
  auto passes = [&] {
    std::string text = read_file(pass_file_);
    int n = 0;
    for (size_t at = text.find("PASS\n"); at != std::string::npos; at = text.find("PASS\n", at + 1)) n++;
    return n;
  };
  int before = passes();
  RunResult r = restore(image_path(), extra);
  ASSERT_TRUE(r.started);
  ASSERT_FALSE(r.timed_out) << "imgtool restore hung; program stderr:\n" << log();
  EXPECT_TRUE(r.exited && r.exit_code == code)
      << "imgtool restore: " << r.status() << " (expected exit " << code << ")\nimgtool stderr:\n"
      << r.err << "\nprogram stderr:\n"
      << log();
  EXPECT_EQ(passes(), before + 1) << "the restored program did not report PASS in " << pass_file_ << ":\n"
                                  << read_file(pass_file_);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "") << "imgtool printed on stderr";
  EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " still exists after the restored process exited";
}

}  // namespace ckpt::restoretest
