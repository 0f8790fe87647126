#include "target.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

namespace ckpt::dumptest {

std::string imgtool() {
  const char *env = std::getenv("CKPT_TEST_IMGTOOL");
  return env && *env ? env : IMGTOOL_PATH;
}

Target::Target(const std::vector<std::string> &argv, int ready_timeout_s)
    : test::SpawnedProcess(argv, [&] {
        Options o;
        o.inherit_stderr = true;
        o.ready_timeout_s = ready_timeout_s;
        return o;
      }()) {}

bool wait_all_in_syscall(pid_t pid, long nr, int timeout_s) {
  return test::wait_until([&] {
    std::vector<pid_t> tids = task_tids(pid);
    bool all = !tids.empty();
    for (pid_t tid : tids) {
      std::string s = read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
      if (s.empty() || s == "running\n" || std::atol(s.c_str()) != nr) all = false;
    }
    return all;
  }, timeout_s);
}

bool read_remote_u64(pid_t pid, unsigned long addr, unsigned long *value) {
  iovec local{value, sizeof *value};
  iovec remote{reinterpret_cast<void *>(addr), sizeof *value};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(sizeof *value);
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
