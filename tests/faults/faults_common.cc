#include "faults_common.h"

#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace ckpt::faulttest {

RunResult run_with_fault(const std::string &fault, const std::vector<std::string> &argv, int hang_guard_s) {
  if (!fault.empty()) setenv("CKPT_FAULT", fault.c_str(), 1);
  RunResult r = test::run(argv, hang_guard_s);
  unsetenv("CKPT_FAULT");
  return r;
}

pid_t spawn(const std::vector<std::string> &argv, const std::string &err_path) {
  std::vector<char *> args;
  for (const std::string &a : argv) args.push_back(const_cast<char *>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(null, 0);
    dup2(null, 1);
    dup2(err, 2);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

void expect_failed_in_one_line(const RunResult &r, const std::vector<std::string> &needles) {
  ASSERT_TRUE(r.exited) << r.status() << "\n" << r.err;
  EXPECT_NE(r.exit_code, 0);
  ASSERT_EQ(r.err_lines().size(), 1u) << r.err;
  for (const std::string &needle : needles) EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

std::set<std::string> folder_names(const std::string &dir) {
  std::vector<std::string> names = test::dir_listing(dir);
  return {names.begin(), names.end()};
}

static std::string status_field(const std::string &status, const std::string &key) {
  std::istringstream in(status);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) {
      std::string v = line.substr(key.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return "";
}

void expect_untraced_and_running(pid_t pid) {
  std::string task = "/proc/" + std::to_string(pid) + "/task";
  std::set<std::string> tids = folder_names(task);
  EXPECT_FALSE(tids.empty()) << "process " << pid << " is gone";
  for (const std::string &tid : tids) {
    std::string status = test::read_text_file(task + "/" + tid + "/status");
    if (status.empty()) continue;  // a thread that exited meanwhile
    EXPECT_EQ(status_field(status, "TracerPid"), "0") << "thread " << tid << " of " << pid << " is still traced";
    std::string state = status_field(status, "State");
    EXPECT_TRUE(!state.empty() && state[0] != 't' && state[0] != 'T')
        << "thread " << tid << " of " << pid << " is left " << state;
  }
}

std::vector<pid_t> tree_of(pid_t pid) {
  std::vector<pid_t> out{pid};
  std::string task = "/proc/" + std::to_string(pid) + "/task";
  for (const std::string &tid : folder_names(task)) {
    std::istringstream kids(test::read_text_file(task + "/" + tid + "/children"));
    for (pid_t k; kids >> k;) {
      if (test::proc_state(k) == 'Z') continue;
      for (pid_t p : tree_of(k)) out.push_back(p);
    }
  }
  return out;
}

void FaultTest::remember_target() {
  tree_ = tree_of(pid_);
  tree_state_.clear();
  for (pid_t p : tree_) {
    tree_state_.push_back(test::capture_idle_state(p));
    ASSERT_EQ(tree_state_.back().error, "") << "process " << p << " before the dump";
  }
  folder_ = folder_names(dir());
}

void FaultTest::expect_target_as_before() {
  EXPECT_EQ(folder_names(dir()), folder_) << "the destination folder changed";
  std::vector<pid_t> now = tree_of(pid_);
  EXPECT_EQ(std::set<pid_t>(now.begin(), now.end()), std::set<pid_t>(tree_.begin(), tree_.end()))
      << "the target's tree changed";
  for (size_t i = 0; i < tree_.size(); i++) {
    expect_untraced_and_running(tree_[i]);
    test::ProcessState after = test::capture_idle_state(tree_[i]);
    std::vector<std::string> diff = test::diff_states(tree_state_[i], after);
    std::string lines;
    for (const std::string &d : diff) lines += "  " + d + "\n";
    EXPECT_TRUE(diff.empty()) << "process " << tree_[i] << " changed:\n" << lines;
  }
}

void FaultTest::expect_program_passes() {
  ASSERT_NO_FATAL_FAILURE(go());
  int status = 0;
  ASSERT_TRUE(program_->wait_exit(&status, 60)) << "the program did not finish after the go file";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status 0x" << std::hex << status << "\n" << log();
  std::string pass = test::read_text_file(pass_file_.empty() ? log_path() : pass_file_);
  EXPECT_NE(pass.find("PASS"), std::string::npos) << pass;
}

}  // namespace ckpt::faulttest
