#include "restore_common.h"

#include <nlohmann/json.hpp>

#include "known_state_differences.h"
#include "one_line_failure.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <iostream>
#include <poll.h>
#include <spawn.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace ckpt::restoretest {

std::string imgtool() {
  const char *env = std::getenv("CKPT_TEST_IMGTOOL");
  return env && *env ? env : IMGTOOL_PATH;
}

std::vector<pid_t> live_descendants(pid_t pid) {
  std::vector<pid_t> out;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR *d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent *e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::istringstream ss(read_file(dir + "/" + e->d_name + "/children"));
    for (pid_t p; ss >> p;) {
      if (proc_state(p) == 'Z') continue;
      out.push_back(p);
      for (pid_t q : live_descendants(p)) out.push_back(q);
    }
  }
  closedir(d);
  return out;
}

std::vector<WholeMount> whole_filesystem_mounts() {
  std::vector<WholeMount> out;
  std::istringstream in(read_file("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, devno, root, mountpoint;
    f >> id >> parent >> devno >> root >> mountpoint;
    size_t dash = line.find(" - ");
    if (dash != std::string::npos && root == "/") out.push_back({mountpoint, line.substr(dash + 3)});
  }
  return out;
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
  test::expect_one_line_failure(r, "imgtool restore: ", needle);
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
      if (fail_on_leftovers_ && proc_state(p) != 'Z')
        ADD_FAILURE() << "process " << p << " (" << read_file("/proc/" + std::to_string(p) + "/stat").substr(0, 120)
                      << ") was left running; killing it";
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
  if (compare_state_ || compare_tree_) {
    ASSERT_NO_FATAL_FAILURE(capture_tree_before());
  }
  std::vector<std::string> args = {"--kill"};
  args.insert(args.end(), extra.begin(), extra.end());
  // A tree: its other processes become our children (we are the
  // subreaper) as it dies, all killed; they are reaped below so that their
  // pids are free. Ours before the dump are not the tree's.
  std::vector<pid_t> before = our_children();
  RunResult r = dump(pid_, image_path(), args);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << "dump: " << r.status() << "\n" << r.err;
  int status = 0;
  ASSERT_TRUE(program_->wait_exit(&status, 10)) << "still alive after dump --kill";
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "wait status 0x" << std::hex << status << "\nstderr:\n" << log();
  ASSERT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " still exists after the dump";
  bool gone = wait_until(
      [&] {
        bool left = false;
        for (pid_t p : our_children())
          if (std::find(before.begin(), before.end(), p) == before.end())
            left |= waitpid(p, nullptr, WNOHANG) != p;
        return !left;
      },
      10);
  ASSERT_TRUE(gone) << "the dumped tree's other processes are still there after the dump";
}

void RestoreTest::capture_tree_before() {
  before_state_ = test::capture_idle_state(pid_);
  ASSERT_EQ(before_state_.error, "") << "the program before the dump";
  before_tree_.clear();
  if (compare_tree_) {
    ASSERT_NO_FATAL_FAILURE(capture_processes_before(live_descendants(pid_), &before_tree_));
  }
}

void RestoreTest::go() { ASSERT_TRUE(write_file(go_path(), "go\n")); }

int RestoreTest::pass_count() const { return test::count_occurrences(read_file(pass_file_), "PASS\n"); }

void RestoreTest::restore_expect(int code, const std::vector<std::string> &extra) {
  bool pidns = std::find(extra.begin(), extra.end(), "--pidns") != extra.end();
  if (compare_state_ || (compare_tree_ && !pidns)) return restore_compare_expect(code, extra);
  ASSERT_NO_FATAL_FAILURE(go());
  if (pass_file_.empty()) pass_file_ = log_path();
  int before = pass_count();
  RunResult r = restore(image_path(), extra);
  ASSERT_TRUE(r.started);
  ASSERT_FALSE(r.timed_out) << "imgtool restore hung; program stderr:\n" << log();
  EXPECT_TRUE(r.exited && r.exit_code == code)
      << "imgtool restore: " << r.status() << " (expected exit " << code << ")\nimgtool stderr:\n"
      << r.err << "\nprogram stderr:\n"
      << log();
  EXPECT_EQ(pass_count(), before + 1) << "the restored program did not report PASS in " << pass_file_ << ":\n"
                                      << read_file(pass_file_);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "") << "imgtool printed on stderr";
  EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " still exists after the restored process exited";
}

void RestoreTest::start_dump_restore(const std::string &program, const std::vector<std::string> &restore_extra) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore_args(program, {}, restore_extra));
}

void RestoreTest::start_dump_restore_args(const std::string &program, const std::vector<std::string> &args,
                                          const std::vector<std::string> &restore_extra) {
  ASSERT_NO_FATAL_FAILURE(start(program, args));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, restore_extra));
}

RunResult RestoreTest::imgtool_run(const std::vector<std::string> &args, int timeout_s) {
  std::vector<std::string> argv = {imgtool()};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run(argv, timeout_s);
}

void RestoreTest::info_json(nlohmann::json *out) {
  RunResult i = imgtool_run({"info", "--json", image_path()});
  ASSERT_TRUE(i.exited && i.exit_code == 0) << i.err;
  *out = nlohmann::json::parse(i.out, nullptr, false);
  ASSERT_FALSE(out->is_discarded()) << i.out;
}

void RestoreTest::capture_processes_before(const std::vector<pid_t> &pids,
                                           std::map<pid_t, test::ProcessState> *before) {
  for (pid_t p : pids) {
    (*before)[p] = test::capture_idle_state(p);
    ASSERT_EQ((*before)[p].error, "") << "process " << p << " before the dump";
  }
}

void RestoreTest::expect_processes_as_before(const std::map<pid_t, test::ProcessState> &before,
                                             const std::vector<pid_t> &pids, const std::vector<std::string> &restore_extra) {
  for (pid_t p : pids) {
    test::CaptureOptions options = restored_capture_options(p, restore_extra);
    test::ProcessState after = test::capture_idle_state(p, options);
    EXPECT_EQ(after.error, "") << "restored process " << p;
    if (!after.error.empty()) continue;
    StateComparison cmp =
        compare_with_known_differences(test::diff_states(before.at(p), after), !options.anonymous_backing.empty(),
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    EXPECT_TRUE(cmp.unexpected.empty()) << "restored process " << p << " differs (" << cmp.unexpected.size()
                                        << " fields):\n" << join_lines(cmp.unexpected, 80);
  }
}

void RestoreTest::expect_state_as_before(const test::CaptureOptions &options) {
  test::ProcessState after = test::capture_idle_state(pid_, options);
  EXPECT_EQ(after.error, "") << "the restored program; its stderr:\n" << log();
  if (!after.error.empty()) return;
  StateComparison cmp =
      compare_with_known_differences(test::diff_states(before_state_, after), !options.anonymous_backing.empty(),
                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
  for (const auto &[issue, lines] : cmp.known)
    std::cout << "[ known    ] issue " << issue << ": " << lines.size() << " field(s):\n" << join_lines(lines, 3);
  EXPECT_TRUE(cmp.unexpected.empty()) << "the restored process differs from the dumped one (" << cmp.unexpected.size()
                                      << " fields):\n"
                                      << join_lines(cmp.unexpected, 80);
}

void RestoreTest::restore_compare_expect(int code, const std::vector<std::string> &extra) {
  ASSERT_FALSE(before_state_.fields.empty()) << "no state captured before the dump (dump_kill with compare_state_)";
  if (pass_file_.empty()) pass_file_ = log_path();
  int before = pass_count();
  std::string pidfile = tmp_.file("restored.pid");
  unlink(pidfile.c_str());
  // An earlier restore of the same image let its program run on: the
  // restored one must wait for the go file again, idle, to be compared.
  unlink(go_path().c_str());
  std::vector<std::string> args = extra;
  args.insert(args.end(), {"--detach", "--pidfile", pidfile});
  RunResult r = restore_command_ ? restore_command_(args) : restore(image_path(), args);
  ASSERT_TRUE(r.started);
  ASSERT_FALSE(r.timed_out) << "imgtool restore --detach hung; program stderr:\n" << log();
  ASSERT_TRUE(r.exited && r.exit_code == 0) << "imgtool restore --detach: " << r.status() << "\nimgtool stderr:\n"
                                            << r.err << "\nprogram stderr:\n"
                                            << log();
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "") << "imgtool printed on stderr";
  EXPECT_EQ(read_file(pidfile), std::to_string(pid_) + "\n");
  // The restored program polls for the go file, which does not exist yet:
  // it is idle, as it was when before_state_ was captured.
  expect_state_as_before(restored_capture_options(pid_, extra));
  if (compare_tree_) {
    std::vector<pid_t> members;
    for (const auto &m : before_tree_) members.push_back(m.first);
    expect_processes_as_before(before_tree_, members, extra);
  }
  ASSERT_NO_FATAL_FAILURE(go());
  int st = 0;
  ASSERT_TRUE(test::wait_child_exit(pid_, &st, 90))
      << "the restored program did not exit after the go file; stderr:\n" << log();
  if (code >= 128)
    EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == code - 128) << "wait status 0x" << std::hex << st;
  else
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == code)
        << "wait status 0x" << std::hex << st << " (expected exit " << std::dec << code << ")\nprogram stderr:\n"
        << log();
  EXPECT_EQ(pass_count(), before + 1) << "the restored program did not report PASS in " << pass_file_ << ":\n"
                                      << read_file(pass_file_);
  EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " still exists after the restored process exited";
  // A detached lazy restore's helper (our child too: we are the
  // subreaper) leaves once the process is gone and its userfaultfd is
  // closed, which may be a moment after the exit when it was still
  // serving (a background copy held back): TearDown's leftover check
  // waits for it, bounded, instead of racing it.
  if (std::find(extra.begin(), extra.end(), "--lazy") != extra.end())
    wait_until(
        [] {
          for (pid_t p : our_children())
            if (proc_state(p) != 'Z') return false;
          return true;
        },
        30);
}

test::CaptureOptions RestoreTest::restored_capture_options(pid_t pid, const std::vector<std::string> &extra) {
  test::CaptureOptions options;
  // --lazy maps the image file where the process had anonymous memory.
  if (std::find(extra.begin(), extra.end(), "--lazy") != extra.end()) {
    options.anonymous_backing = image_path();
    // The lazy helper copies the rest of memory in the background, then
    // unregisters it: until then the served VMAs carry userfaultfd's "um"
    // VmFlag. Compare the state the restore ends in.
    // A test that holds the background copy back (CKPT_LAZY_BACKGROUND_
    // DELAY_MS) compares the state as it is, the helper still serving:
    // the "um" it leaves is listed for it (known_state_differences.cc).
    const char *delay = getenv("CKPT_LAZY_BACKGROUND_DELAY_MS");
    if (!delay || std::atol(delay) == 0) {
      bool served = wait_until([&] { return read_file("/proc/" + std::to_string(pid) + "/smaps").find(" um") == std::string::npos; }, 60);
      EXPECT_TRUE(served) << "the lazy restore of process " << pid << " still serves pages after 60 s";
    }
  }
  return options;
}

void RestoreTest::detach_restore_and_compare(const std::vector<pid_t> &pids) {
  std::map<pid_t, test::ProcessState> before;
  ASSERT_NO_FATAL_FAILURE(capture_processes_before(pids, &before));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  RunResult r = restore(image_path(), {"--detach", "--pidfile", restored_pidfile()});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  expect_processes_as_before(before, pids);
}

std::map<int, std::string> RestoreTest::fd_states(const std::string &type, size_t index) {
  RunResult i = imgtool_run({"info", "--json", image_path()});
  EXPECT_TRUE(i.exited && i.exit_code == 0) << i.err;
  nlohmann::json j = nlohmann::json::parse(i.out, nullptr, false);
  std::map<int, std::string> out;
  if (j.is_discarded() || index >= j["processes"].size()) return out;
  for (const nlohmann::json &f : j["processes"][index]["fds"])
    if (f["type"] == type) out[f["fd"].get<int>()] = f.value("state", "");
  return out;
}

RunResult RestoreTest::gdb_ckpt_fds() { return imgtool_run({"gdb", image_path(), "--", "-batch", "-ex", "ckpt fds"}, 120); }

void RestoreTest::expect_dump_kill_refused(const std::string &after_pid, const std::string &why) {
  RunResult r = dump(pid_, image_path(), {"--kill"});
  ASSERT_TRUE(r.exited);
  EXPECT_NE(r.exit_code, 0);
  std::vector<std::string> lines = r.err_lines();
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_EQ(lines[0].rfind("imgtool dump: pid " + std::to_string(pid_) + ": " + after_pid, 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(why), std::string::npos) << lines[0];
  EXPECT_NE(access(image_path().c_str(), F_OK), 0) << "a refused dump wrote the image";
}

void RestoreTest::expect_original_finishes(int timeout_s) {
  ASSERT_NO_FATAL_FAILURE(go());
  int st = 0;
  ASSERT_TRUE(program_->wait_exit(&st, timeout_s)) << "the original did not finish";
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st << "\n" << log();
}

std::vector<pid_t> RestoreTest::tree_pids() const {
  std::vector<pid_t> out;
  std::istringstream in(program_->value("pids"));
  for (pid_t p; in >> p;) out.push_back(p);
  return out;
}

void ReportingRestoreTest::SetUp() {
  RestoreTest::SetUp();
  pass_file_ = tmp_.file("report.txt");
}

void ReportingRestoreTest::expect_sigterm_forwarded(const std::vector<std::string> &restore_args) {
  Program::Options o;
  o.stdout_file = tmp_.file("imgtool.out");
  o.log = tmp_.file("imgtool.err");
  std::vector<std::string> argv = {imgtool()};
  argv.insert(argv.end(), restore_args.begin(), restore_args.end());
  std::string command = "imgtool";
  for (size_t i = 0; i + 1 < restore_args.size(); i++) command += " " + restore_args[i];  // but the image
  Program tool(argv, o);
  ASSERT_TRUE(tool.ready()) << tool.error();
  ASSERT_TRUE(wait_until([&] { return count(report(), "tick") >= 3; }, 20))
      << "the restored process does not tick; imgtool stderr: " << read_file(o.log) << "\nreport:\n" << report();
  ASSERT_EQ(kill(tool.pid(), SIGTERM), 0);
  int st = 0;
  ASSERT_TRUE(tool.wait_exit(&st, 20)) << command << " did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGTERM) << "wait status 0x" << std::hex << st;
  EXPECT_EQ(read_file(o.log), "");
}

}  // namespace ckpt::restoretest
