// Dumps cut short from outside: a signal to imgtool half-way through the
// memory phase, the destination changing under a running dump, a thread
// that never stops. Each must end with one line, no file (temporary ones
// included) and the target as it was: running, or stopped, and untraced.
#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dump_common.h"

namespace ckpt::dumptest {
namespace {

/// `imgtool dump --pid PID -o DEST` running in the background
/// (spawned_process.h), its stderr in a file; killed and reaped when
/// destroyed.
class BackgroundDump {
 public:
  BackgroundDump(pid_t target, const std::string &dest, const std::string &err_file)
      : err_file_(err_file),
        process_({imgtool(), "dump", "--pid", std::to_string(target), "-o", dest}, [&] {
          test::SpawnedProcess::Options o;
          o.log = err_file;
          o.stdout_file = "/dev/null";
          o.stdin_pipe = false;
          return o;
        }()) {}
  pid_t pid() const { return process_.ready() ? process_.pid() : -1; }
  bool running() {
    if (!process_.ready()) return false;
    if (!exited_) exited_ = process_.wait_exit(&status_, 0);
    return !exited_;
  }
  /// What it printed on stderr, as a RunResult for expect_one_line_failure.
  RunResult result() const {
    RunResult r;
    r.started = process_.ready();
    r.exited = exited_ && WIFEXITED(status_);
    r.exit_code = r.exited ? WEXITSTATUS(status_) : -1;
    r.term_signal = exited_ && WIFSIGNALED(status_) ? WTERMSIG(status_) : 0;
    r.err = read_file(err_file_);
    return r;
  }

 private:
  std::string err_file_;
  test::SpawnedProcess process_;
  int status_ = 0;
  bool exited_ = false;
};

/// Size of the image the dumper `dumper` is writing in dir, or -1: the
/// file is unnamed until complete (O_TMPFILE, "DIR/#INO (deleted)" in
/// /proc/PID/fd) or, on filesystems without it, ".NAME.tmp-*".
long long temp_file_size(pid_t dumper, const std::string &dir) {
  std::string fds = "/proc/" + std::to_string(dumper) + "/fd";
  for (const std::string &n : dir_listing(fds)) {
    char target[4096];
    ssize_t len = readlink((fds + "/" + n).c_str(), target, sizeof target - 1);
    if (len <= 0) continue;
    target[len] = 0;
    if (std::string(target).rfind(dir + "/", 0) != 0) continue;
    struct stat st;
    if (stat((fds + "/" + n).c_str(), &st) == 0 && S_ISREG(st.st_mode)) return st.st_size;
  }
  return -1;
}

constexpr long long kBigMiB = 768;

/// Dumps a kBigMiB target and sends `sig` to imgtool once 64 MiB of the
/// image are written. imgtool must stop within a few batches (the
/// temporary file never grows past half the memory), print one line, and
/// leave no file and the target as it was.
void interrupt_mid_memory(int sig, bool target_stopped) {
  Target t({DUMP_BIGMEM_PATH, std::to_string(kBigMiB)}, 120);
  ASSERT_TRUE(t.ready()) << t.error();
  if (target_stopped) {
    ASSERT_TRUE(t.stop());
  }
  TempDir tmp, logs;
  BackgroundDump d(t.pid(), tmp.file("img.core"), logs.file("stderr"));
  ASSERT_GT(d.pid(), 0);
  long long size = -1;
  test::wait_until([&] { return !d.running() || (size = temp_file_size(d.pid(), tmp.path())) >= (64ll << 20); }, 120);
  ASSERT_TRUE(d.running()) << "the dump ended before 64 MiB were written: " << d.result().err;
  ASSERT_GE(size, 64ll << 20) << "hang guard: the image did not grow";
  ASSERT_EQ(kill(d.pid(), sig), 0);
  long long largest = size;
  test::wait_until(
      [&] {
        largest = std::max(largest, temp_file_size(d.pid(), tmp.path()));
        return !d.running();
      },
      120);
  ASSERT_FALSE(d.running()) << "hang guard: imgtool still runs after the signal";
  EXPECT_LT(largest, (kBigMiB << 20) / 2) << "the memory phase went on after " << strsignal(sig);
  expect_one_line_failure(d.result(), "interrupted");
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{});
  if (target_stopped) {
    EXPECT_EQ(proc_state(t.pid()), 'T');
    EXPECT_EQ(tracer_pid(t.pid()), 0);
  } else {
    expect_running_untraced(t.pid());
    for (pid_t tid : task_tids(t.pid())) EXPECT_EQ(tracer_pid(tid), 0) << "thread " << tid;
  }
}

TEST(DumpInterrupted, SigintMidMemoryPhase) { interrupt_mid_memory(SIGINT, false); }
TEST(DumpInterrupted, SigtermMidMemoryPhase) { interrupt_mid_memory(SIGTERM, false); }
TEST(DumpInterrupted, SighupMidMemoryPhaseOfAStoppedTarget) { interrupt_mid_memory(SIGHUP, true); }

// The destination turned into a directory while the memory is written:
// the rename fails, and the temporary file (hundreds of MiB) must go too.
TEST(DumpInterrupted, DestinationBecomesADirectoryMidDump) {
  Target t({DUMP_BIGMEM_PATH, "256"}, 120);
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp, logs;
  std::string dest = tmp.file("img.core");
  BackgroundDump d(t.pid(), dest, logs.file("stderr"));
  ASSERT_GT(d.pid(), 0);
  test::wait_until([&] { return !d.running() || temp_file_size(d.pid(), tmp.path()) >= 0; }, 120);
  ASSERT_TRUE(d.running()) << "the dump ended before its temporary file was seen: " << d.result().err;
  ASSERT_EQ(mkdir(dest.c_str(), 0755), 0);
  test::wait_until([&] { return !d.running(); }, 120);
  ASSERT_FALSE(d.running()) << "hang guard";
  expect_one_line_failure(d.result(), "directory");
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{"img.core"});
  EXPECT_EQ(dir_listing(dest), std::vector<std::string>{});
  expect_running_untraced(t.pid());
}

/// Sets or clears FS_IMMUTABLE_FL; false where the filesystem lacks it.
bool set_immutable(const std::string &path, bool on) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  int flags = 0;
  bool ok = ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
  if (ok) {
    flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
    ok = ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
  }
  close(fd);
  return ok;
}

// An existing destination that even root may not replace (immutable):
// the dump is written in full, the final rename fails with EPERM, and the
// temporary file must not stay behind.
TEST(DumpInterrupted, DestinationCannotBeReplaced) {
  Target t({DUMP_SLEEPER_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  std::string dest = tmp.file("img.core");
  ASSERT_TRUE(write_file(dest, "an older image\n"));
  if (!set_immutable(dest, true)) GTEST_SKIP() << "no immutable files on this filesystem: " << strerror(errno);
  struct Mutable {  // declared after tmp: runs first, so tmp can be removed
    std::string path;
    ~Mutable() { set_immutable(path, false); }
  } undo{dest};
  expect_one_line_failure(dump(t.pid(), dest), "img.core");
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{"img.core"});
  EXPECT_EQ(read_file(dest), "an older image\n");
  expect_running_untraced(t.pid());
}

// `-o -` into a reader that goes away: EPIPE, one line, target running.
TEST(DumpInterrupted, StdoutReaderGoesAway) {
  Target t({DUMP_BIGMEM_PATH, "64"}, 60);
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  std::string rc = tmp.file("rc"), err = tmp.file("err");
  RunResult r = test::run({"/bin/sh", "-c", "{ \"$0\" dump --pid \"$1\" -o - 2>\"$3\"; echo $? > \"$2\"; } | head -c 4096 >/dev/null",
                           imgtool(), std::to_string(t.pid()), rc, err},
                          120);
  ASSERT_TRUE(r.exited) << r.status();
  EXPECT_NE(read_file(rc), "0\n");
  RunResult d;
  d.started = d.exited = true;
  d.exit_code = std::atoi(read_file(rc).c_str());
  d.err = read_file(err);
  expect_one_line_failure(d, "broken pipe");
  expect_running_untraced(t.pid());
}

// A thread that never reaches a stop (a vfork() parent whose child blocks:
// state D) must not hang the dump with every other thread frozen: it
// gives up after a few seconds with one line, and lets the process go.
// On the old code this hung until the hang guard.
TEST(DumpInterrupted, ThreadThatNeverStopsTimesOut) {
  Target t({DUMP_VFORK_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  pid_t stuck = static_cast<pid_t>(std::atoi(t.value("stuck").c_str()));
  ASSERT_GT(stuck, 0);
  ASSERT_TRUE(wait_for_state(stuck, 'D')) << "the vfork thread is not in state D but " << proc_state(stuck);
  TempDir tmp;
  RunResult r = test::run({imgtool(), "dump", "--pid", std::to_string(t.pid()), "-o", tmp.file("img.core")}, 60);
  expect_one_line_failure(r, "did not stop");
  EXPECT_NE(r.err.find(std::to_string(stuck)), std::string::npos) << r.err;
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{});
  // Every thread let go: the stuck one too (the kernel detaches it when
  // imgtool exits); the main thread runs on, the stuck one is still in D.
  for (pid_t tid : task_tids(t.pid())) EXPECT_EQ(tracer_pid(tid), 0) << "thread " << tid;
  char s = proc_state(t.pid());
  EXPECT_TRUE(s == 'S' || s == 'R') << s;
  EXPECT_EQ(proc_state(stuck), 'D');
}

}  // namespace
}  // namespace ckpt::dumptest
