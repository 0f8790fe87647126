// restore --pidns (pidns.h).
#include "pidns.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sched.h>
#include <string>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pid_file.h"
#include "tree_plan.h"
#include "verdict.h"

namespace ckpt::reader {

using namespace img;

namespace {

std::string read_text(const std::string &path) {
  std::string text;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, n);
  close(fd);
  return text;
}

pid_t g_inner_root = 0;
// The init forwards what is sent to it (from outside: inside, pid 1 only
// gets the signals it handles) to the restored root.
void init_forward_signal(int sig) {
  if (g_inner_root > 0) kill(g_inner_root, sig);
}

// The namespace's own view of the system: mounts made here stay here
// (a recursive private "/", so the fresh /proc does not propagate to the
// host's mount namespace), and /proc shows this pid namespace.
Status enter_own_proc() {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0)
    return make_error("cannot make the mounts of the new namespace private: %s", strerror(errno));
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) < 0)
    return make_error("cannot mount a proc file system for the new pid namespace: %s", strerror(errno));
  return {};
}

// pid 1 of the new namespace: restore, report on `report_fd`, then reap
// until the root exits and exit with its status.
[[noreturn]] void run_init(const RestoreOptions &opt, const LoadedImage &loaded, int report_fd) {
  auto report_failure = [&](const Error &e) {
    std::string line = e.message() + "\n";
    (void)!write(report_fd, line.data(), line.size());
    _exit(127);
  };
  // The host imgtool gone in the foreground (killed): the namespace goes.
  if (!opt.detach) prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (Status s = enter_own_proc(); !s) report_failure(s.error());
  // The init is pid 1 here: a process that was pid 1 cannot have its pid.
  bool has_pid_1 = loaded.view.tasks.records[0].pid == 1;
  if (loaded.tree)
    for (const TreeProcess &p : loaded.tree->processes) has_pid_1 |= p.pid == 1;
  if (has_pid_1) report_failure(make_error("pid 1 cannot be restored under --pidns (the namespace's init is pid 1)"));
  RestoredProcesses restored;
  if (Status s = start_restored(loaded, opt.lazy, restored); !s) report_failure(s.error());
  if (loaded.memory_restored) loaded.memory_restored();  // our copy of a spooled stream
  restored.detach_helpers();  // our children: reaped below like every orphan
  g_inner_root = restored.root;
  struct sigaction sa {};
  sa.sa_handler = init_forward_signal;
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2}) sigaction(sig, &sa, nullptr);
  // Our standard streams are imgtool's: a caller that reads them to EOF
  // (restore --detach in a pipeline) must not wait for the init too.
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd < 3 && null_fd >= 0; fd++) dup2(null_fd, fd);
  if (null_fd > 2) close(null_fd);
  (void)!write(report_fd, "ok\n", 3);
  close(report_fd);
  for (;;) {
    int st = 0;
    pid_t p = waitpid(-1, &st, 0);
    if (p < 0 && errno == EINTR) continue;
    if (p < 0) _exit(1);
    if (p != restored.root) continue;  // an orphan, reaped
    // Our exit ends the namespace: the kernel kills what is left in it.
    if (WIFEXITED(st)) _exit(WEXITSTATUS(st));
    _exit(128 + WTERMSIG(st));
  }
}

bool g_own_user_namespace = false;
bool g_own_user_namespace_planned = false;
Status write_proc_self(const char *name, const std::string &text) {
  int fd = open((std::string("/proc/self/") + name).c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return make_error("cannot open /proc/self/%s: %s", name, strerror(errno));
  ssize_t n = write(fd, text.data(), text.size());
  int e = errno;
  close(fd);
  if (n != static_cast<ssize_t>(text.size()))
    return make_error("cannot write /proc/self/%s of the new user namespace: %s", name, strerror(e));
  return {};
}

}  // namespace

Status enter_own_user_namespace() {
  uid_t uid = geteuid();
  gid_t gid = getegid();
  if (uid != getuid() || gid != getgid())
    return make_error("restore --pidns as user %u: imgtool runs with different real and effective ids (setuid?)",
                      unsigned(uid));
  // Unprivileged user namespaces may be switched off (user.max_user_namespaces
  // = 0, Debian's kernel.unprivileged_userns_clone = 0, an LSM such as
  // AppArmor's restrict_unprivileged_userns): unshare then fails with EPERM
  // or ENOSPC, and nothing has changed yet.
  if (unshare(CLONE_NEWUSER) < 0)
    return make_error("restore --pidns as user %u needs a user namespace to own the new pid namespace (clone3 "
                      "set_tid needs CAP_CHECKPOINT_RESTORE there), and creating one failed: %s (see sysctl "
                      "user.max_user_namespaces, kernel.unprivileged_userns_clone)",
                      unsigned(uid), strerror(errno));
  // An unprivileged writer of gid_map must deny setgroups first
  // (user_namespaces(7)): the groups stay the user's own.
  CKPT_TRY(write_proc_self("setgroups", "deny"));
  CKPT_TRY(write_proc_self("uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1\n"));
  CKPT_TRY(write_proc_self("gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1\n"));
  g_own_user_namespace = true;
  return {};
}

bool in_own_user_namespace() { return g_own_user_namespace; }

void plan_own_user_namespace() { g_own_user_namespace_planned = true; }

bool own_user_namespace_planned() { return g_own_user_namespace_planned; }

pid_t host_pid_of(pid_t init, pid_t inner_pid) {
  std::string children = read_text("/proc/" + std::to_string(init) + "/task/" + std::to_string(init) + "/children");
  size_t at = 0;
  while (at < children.size()) {
    size_t end = children.find(' ', at);
    if (end == std::string::npos) end = children.size();
    std::string pid = children.substr(at, end - at);
    at = end + 1;
    if (pid.empty()) continue;
    std::string status = read_text("/proc/" + pid + "/status");
    size_t line = status.find("\nNSpid:");
    if (line == std::string::npos) continue;
    size_t line_end = status.find('\n', line + 1);
    std::string fields = status.substr(line + 7, line_end - line - 7);
    size_t last = fields.find_last_of(" \t");
    if (last != std::string::npos && std::stoi(fields.substr(last + 1)) == inner_pid) return std::stoi(pid);
  }
  return 0;
}

Expected<int> restore_in_new_pid_namespace(const RestoreOptions &opt, const LoadedImage &loaded, PidFile &pidfile,
                                           const std::function<void()> &running) {
  if (own_user_namespace_planned()) CKPT_TRY(enter_own_user_namespace());
  int report[2];
  if (pipe2(report, O_CLOEXEC) < 0) return make_error("pipe: %s", strerror(errno));
  // clone with CLONE_NEWPID makes the child pid 1 of a new pid namespace
  // (unshare would only do so for our next child); the raw syscall, like
  // fork, with the child on our stack.
  long init = syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, nullptr, nullptr, nullptr, 0);
  if (init < 0) {
    int e = errno;
    close(report[0]);
    close(report[1]);
    return make_error("cannot create a new pid namespace: %s", strerror(e));
  }
  if (init == 0) {
    close(report[0]);
    pidfile.close_unwritten();  // the host imgtool writes it
    run_init(opt, loaded, report[1]);
  }
  close(report[1]);
  std::string verdict;
  char buf[512];
  for (;;) {
    ssize_t n = read(report[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    verdict.append(buf, n);
  }
  close(report[0]);
  if (verdict != "ok\n") {
    auto status = wait_exit_status(static_cast<pid_t>(init));
    while (!verdict.empty() && verdict.back() == '\n') verdict.pop_back();
    if (verdict.empty())
      return make_error("the init of the new pid namespace ended (status %d) before the process was running",
                        status ? *status : -1);
    return Error(verdict);
  }
  running();
  pid_t root = host_pid_of(static_cast<pid_t>(init), loaded.view.tasks.records[0].pid);
  if (root <= 0) {
    // The root ended at once (and the init with it): its status is ours.
    if (opt.detach && opt.pidfile.empty()) return 0;
    if (!opt.pidfile.empty()) {
      kill(static_cast<pid_t>(init), SIGKILL);
      (void)wait_exit_status(static_cast<pid_t>(init));
      return make_error("the restored process ended before its pid could be read for %s", opt.pidfile.c_str());
    }
  }
  if (Status written = pidfile.write(root); !written) {
    // Opened before the restore, so only a full or failing disk gets
    // here: the namespace goes with its init (nothing left running).
    kill(static_cast<pid_t>(init), SIGKILL);
    (void)wait_exit_status(static_cast<pid_t>(init));
    return written.error();
  }
  if (opt.detach) return 0;
  return wait_in_foreground(root, static_cast<pid_t>(init));
}

}  // namespace ckpt::reader
