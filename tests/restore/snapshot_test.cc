// Snapshot mode (the short freeze, DECISIONS.md 131): the dump of a running
// process reads its memory from a frozen copy-on-write copy while the
// process runs on. The image must be as of one instant (threads that keep
// mutating memory under a lock find their invariants intact after
// restore), the process must see nothing of the copy, and nothing may be
// left behind, even when imgtool is killed half-way.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "known_state_differences.h"
#include "restore_common.h"
#include "snapshot_cgroup.h"

extern char **environ;

namespace ckpt::restoretest {
namespace {

class Snapshot : public RestoreTest {
 protected:
  std::string fds() const { return list_dir("/proc/" + std::to_string(pid_) + "/fd"); }
  std::string children() const {
    std::string all;
    for (const std::string &tid : split_lines(list_dir("/proc/" + std::to_string(pid_) + "/task")))
      all += read_file("/proc/" + std::to_string(pid_) + "/task/" + tid + "/children");
    return all;
  }
  // The snapshot cgroup the dump run as `dump` made (it is named for its
  // imgtool's pid namespace and pid: writer/src/snapshot_cgroup.h), if it
  // is still there: once imgtool's exit is seen, its guard and it have
  // removed it (docs/design/dump-guard.md). Only this test's own dumps
  // are looked at: other dumps on the machine (ctest -j2, another
  // checkout's tests) have theirs for a while.
  static std::string leftover_snapshot_cgroup(const RunResult &dump) {
    std::string path = snapshot_cgroup_path(dump.pid);
    EXPECT_GT(dump.pid, 0);
    return access(path.c_str(), F_OK) == 0 ? path : "";
  }
  static std::string snapshot_cgroup_path(pid_t imgtool_pid) {
    std::string mount = writer::cgroup2_mount();
    EXPECT_NE(mount, "") << "no cgroup v2 mount: snapshot mode needs one";
    struct stat ns;
    EXPECT_EQ(stat("/proc/self/ns/pid", &ns), 0);  // imgtool, our child, is in ours
    return mount + "/" + writer::snapshot_cgroup_name(ns.st_ino, imgtool_pid);
  }
  static std::string list_dir(const std::string &path) {
    std::string out;
    if (DIR *d = opendir(path.c_str())) {
      while (dirent *e = readdir(d))
        if (e->d_name[0] != '.') out += std::string(e->d_name) + "\n";
      closedir(d);
    }
    return out;
  }
  // WORKDIR/check makes the running program check what it sees (see
  // restore_snapshot.c); returns its verdict.
  std::string program_check() {
    std::string checked = tmp_.file("checked");
    unlink(checked.c_str());
    EXPECT_TRUE(write_file(tmp_.file("check"), ""));
    EXPECT_TRUE(wait_until([&] { return access(checked.c_str(), F_OK) == 0; }, 30)) << log();
    return read_file(checked);
  }
  void kill_program() {
    kill(pid_, SIGKILL);
    int status;
    ASSERT_TRUE(program_->wait_exit(&status, 10));
  }
  // A command whose standard output is a pipe the test reads only when it
  // chooses: a dump to `-o -` of more than the pipe holds waits in write(2)
  // meanwhile, its snapshot copy made. stderr goes to `err_path`.
  struct HeldOutput {
    pid_t pid = -1;
    int out = -1;
  };
  static HeldOutput spawn_held(const std::vector<std::string> &argv, const std::string &err_path) {
    HeldOutput h;
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<char *> args;
    for (const std::string &a : argv) args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    EXPECT_EQ(posix_spawnp(&h.pid, args[0], &fa, nullptr, args.data(), environ), 0) << argv[0];
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    h.out = p[0];
    return h;
  }
  // Whether the pipe is full (its writer waits).
  static bool pipe_full(int fd) {
    int queued = 0;
    return ioctl(fd, FIONREAD, &queued) == 0 && queued >= fcntl(fd, F_GETPIPE_SZ);
  }
  // Reads h's output to its end into `file`, then waits for it: its exit status.
  static int finish_held(HeldOutput &h, const std::string &file) {
    int to = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(to, 0) << file;
    char buf[1 << 16];
    for (ssize_t n; (n = read(h.out, buf, sizeof buf)) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      EXPECT_EQ(write(to, buf, n), n);
    }
    close(to);
    close(h.out);
    int status = -1;
    EXPECT_TRUE(test::wait_child_exit(h.pid, &status, 120)) << "pid " << h.pid << " did not exit";
    return status;
  }
};

TEST_F(Snapshot, ImageIsOfOneInstantWhileThreadsMutateAndTheProgramSeesNothing) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SNAPSHOT_PATH));
  std::string fds_before = fds();
  // No tracker (a dump leaves one by design: dirty_tracking_test), so that
  // the fd table shows what the copy left.
  RunResult r = dump(pid_, image_path(), {"--stats", "--short-freeze", "--no-track-dirty"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_NE(r.err.find(", freeze snapshot\n"), std::string::npos) << r.err;
  EXPECT_EQ(children(), "");
  EXPECT_EQ(fds(), fds_before);
  EXPECT_EQ(leftover_snapshot_cgroup(r), "");
  EXPECT_EQ(program_check(), "ok\n");
  // gdb reads the image as of the instant too: the lock free, the sums hold.
  RunResult g = test::run({"gdb", "-nx", "-batch", "-ex", "set pagination off", "-ex",
                           "python import gdb\n"
                           "p = gdb.parse_and_eval('pages')\n"
                           "s = sum(int(p[i]['value']) for i in range(8192))\n"
                           "t = sum(int(p[i]['touches']) for i in range(8192))\n"
                           "o = int(gdb.parse_and_eval('ops'))\n"
                           "held = int(gdb.parse_and_eval('lock.__data.__lock'))\n"
                           "print('gdb-check', 'held' if held else ('ok' if s == 0 and t == 2 * o else 'torn %d %d %d' % (s, t, o)))",
                           RESTORE_SNAPSHOT_PATH, image_path()},
                          120);
  EXPECT_TRUE(g.out.find("gdb-check ok") != std::string::npos || g.out.find("gdb-check held") != std::string::npos)
      << g.out << g.err;
  ASSERT_NO_FATAL_FAILURE(kill_program());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(Snapshot, FullFreezeOnRequestAndForKill) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SNAPSHOT_PATH));
  RunResult r = dump(pid_, image_path(), {"--stats", "--full-freeze"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_NE(r.err.find(", freeze full (--full-freeze)\n"), std::string::npos) << r.err;
  r = dump(pid_, image_path(), {"--stats", "--kill"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_NE(r.err.find(", freeze full (--kill)\n"), std::string::npos) << r.err;
  int status;
  ASSERT_TRUE(program_->wait_exit(&status, 10));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// The whole /proc state of a snapshot-mode image's restore, against the
// program's before the dump (an idle program: restore_bigmem's 64 MiB).
TEST_F(Snapshot, RestoredStateAsBefore) {
  compare_state_ = true;
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_BIGMEM_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--short-freeze"}));
  ASSERT_NO_FATAL_FAILURE(restore_compare_expect(0));
}

// The original program's state after a snapshot-mode dump, against its
// state before: the copy left nothing in it.
TEST_F(Snapshot, ProgramStateUnchangedByTheDump) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_BIGMEM_PATH));
  test::ProcessState before = test::capture_idle_state(pid_);
  ASSERT_EQ(before.error, "");
  // Without a tracker, which a dump leaves by design (dirty_tracking_test).
  RunResult r = dump(pid_, image_path(), {"--stats", "--short-freeze", "--no-track-dirty"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_NE(r.err.find(", freeze snapshot\n"), std::string::npos) << r.err;
  test::ProcessState after = test::capture_idle_state(pid_);
  ASSERT_EQ(after.error, "");
  std::vector<std::string> diff = test::diff_states(before, after);
  EXPECT_TRUE(diff.empty()) << diff.size() << " fields differ, first: " << diff[0];
  ASSERT_NO_FATAL_FAILURE(kill_program());
}

// The frozen time `--stats` reports, from its line: "frozen S s" (-1 if
// the line has none).
double stats_frozen(const std::string &err) {
  size_t at = err.find("dump stats: frozen ");
  if (at == std::string::npos) return -1;
  return std::strtod(err.c_str() + at + 19, nullptr);
}

// 50 threads, each counting in a register and writing the count to its
// own page right before the dump (restore_snapshot_threads.c): every
// thread's registers and page in the image are of the same instant, and
// the image is the copy's while the program counts on. `--stats` reports
// the frozen time, counted in the dump's total.
TEST_F(Snapshot, FiftyThreadsRegistersAndPagesOfOneInstant) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SNAPSHOT_THREADS_PATH));
  EXPECT_EQ(program_->value("threads"), "50");
  RunResult r = dump(pid_, image_path(), {"--stats", "--short-freeze"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_NE(r.err.find(", freeze snapshot"), std::string::npos) << r.err;
  double frozen = stats_frozen(r.err);
  double total = std::strtod(r.err.c_str() + r.err.find(", total ") + 8, nullptr);
  EXPECT_GT(frozen, 0) << r.err;
  EXPECT_LE(frozen, total) << r.err;
  EXPECT_EQ(children(), "");
  ASSERT_NO_FATAL_FAILURE(kill_program());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// imgtool killed (kill -9) while it reads the copies: its guard kills the
// copy and reaps it inside the program, which runs on unchanged, and all
// of that before imgtool's exit can be seen (nothing is waited for here).
TEST_F(Snapshot, DumperKilledMidwayLeavesNothingBehind) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SNAPSHOT_PATH));
  std::string fds_before = fds();
  setenv("CKPT_FAULT", "snapshot-midway", 1);
  RunResult r = dump(pid_, image_path(), {"--short-freeze"});
  unsetenv("CKPT_FAULT");
  ASSERT_EQ(r.term_signal, SIGKILL) << r.status() << "\n" << r.err;
  EXPECT_EQ(access(image_path().c_str(), F_OK), -1);
  EXPECT_EQ(children(), "");
  EXPECT_EQ(fds(), fds_before);
  EXPECT_EQ(leftover_snapshot_cgroup(r), "");
  EXPECT_NE(proc_state(pid_), 't');
  EXPECT_EQ(program_check(), "ok\n");
  ASSERT_NO_FATAL_FAILURE(kill_program());
}

// A copy that does not hold the target's stack as it was when frozen (the
// fault point zeroes its page at rsp) fails the dump in one line, before
// any file is made, and leaves the program as it was (DECISIONS.md 217).
// Its whole /proc state is the same after the failed dump, and the
// restore of the dump taken then is compared with it too (decision 240).
TEST_F(Snapshot, CopyDisagreeingWithTheFrozenStackFailsTheDump) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SNAPSHOT_PATH));
  std::string fds_before = fds();
  compare_state_ = true;
  ASSERT_NO_FATAL_FAILURE(capture_tree_before());
  setenv("CKPT_FAULT", "snapshot-copy-stack-zeroed", 1);
  RunResult r = dump(pid_, image_path(), {"--short-freeze", "--no-track-dirty"});
  unsetenv("CKPT_FAULT");
  ASSERT_TRUE(r.exited && r.exit_code != 0) << r.status() << "\n" << r.err;
  EXPECT_NE(r.err.find("as it was when frozen (zeros in the copy)"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(access(image_path().c_str(), F_OK), -1);
  EXPECT_EQ(children(), "");
  EXPECT_EQ(fds(), fds_before);
  EXPECT_EQ(leftover_snapshot_cgroup(r), "");
  EXPECT_EQ(program_check(), "ok\n");
  test::ProcessState after_failure = test::capture_idle_state(pid_);
  ASSERT_EQ(after_failure.error, "");
  std::vector<std::string> diff = test::diff_states(before_state_, after_failure);
  EXPECT_TRUE(diff.empty()) << diff.size() << " fields differ after the failed dump:\n" << join_lines(diff, 20);
  // Without the fault the same dump is taken and restores, as it was.
  r = dump(pid_, image_path(), {"--stats", "--short-freeze", "--no-track-dirty"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_NE(r.err.find(", freeze snapshot\n"), std::string::npos) << r.err;
  ASSERT_NO_FATAL_FAILURE(kill_program());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// The copies' cgroup is made before the freeze (its mkdir is not frozen
// time): a dump that then freezes fully after all (under 8 MiB to store)
// leaves none behind (the dump removes it; its guard would at the latest).
TEST_F(Snapshot, CgroupMadeBeforeTheFreezeIsRemovedWhenTheDumpFreezesFully) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_THREADS_PATH));
  RunResult r = dump(pid_, image_path(), {"--stats", "--no-track-dirty"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_NE(r.err.find(", freeze full (under 8 MiB to store)\n"), std::string::npos) << r.err;
  EXPECT_EQ(leftover_snapshot_cgroup(r), "");
}

// The same cgroup with imgtool killed between its making and the freeze
// (dump-primed): the guard removes it, and the program saw nothing.
TEST_F(Snapshot, CgroupMadeBeforeTheFreezeIsRemovedByTheGuard) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SNAPSHOT_PATH));
  std::string fds_before = fds();
  setenv("CKPT_FAULT", "dump-primed", 1);
  RunResult r = dump(pid_, image_path(), {"--short-freeze", "--no-track-dirty"});
  unsetenv("CKPT_FAULT");
  ASSERT_EQ(r.term_signal, SIGKILL) << r.status() << "\n" << r.err;
  EXPECT_EQ(leftover_snapshot_cgroup(r), "");
  EXPECT_EQ(children(), "");
  EXPECT_EQ(fds(), fds_before);
  EXPECT_EQ(program_check(), "ok\n");
  ASSERT_NO_FATAL_FAILURE(kill_program());
}

// A chain of three dumps, each on the one before, of threads that never
// stop writing (pages are written right up to each freeze and between the
// dumps; the first dump's tracker is armed and write-protected before its
// freeze, while they write): the later dumps reuse the first one's dirty tracker, resetting
// only the pages written since (DECISIONS 189). A page written between a
// reset and the next copy that tracking missed would come from an older
// link and break the invariants the restored program checks.
TEST_F(Snapshot, TrackedChainOfThreeWhileThreadsMutateIsOfOneInstant) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SNAPSHOT_PATH));
  for (int n = 0; n < 3; n++) {
    SCOPED_TRACE("link " + std::to_string(n));
    // --short-freeze: an increment can be under the 8 MiB below which the
    // default freezes fully (how much the threads wrote meanwhile varies).
    std::vector<std::string> opts = {"--stats", "--short-freeze"};
    if (n > 0) opts.insert(opts.end(), {"--parent", "link" + std::to_string(n - 1) + ".core"});
    // The frozen window's steps (frozen_phases.h), to see where smaps and
    // the page plan were read.
    setenv("CKPT_TRACE_TIMES", "1", 1);
    RunResult r = dump(pid_, tmp_.file("link" + std::to_string(n) + ".core"), opts);
    unsetenv("CKPT_TRACE_TIMES");
    ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
    EXPECT_NE(r.err.find(", freeze snapshot"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("trackers armed 1"), std::string::npos) << r.err;
    // The first dump arms before the freeze while the threads write on
    // (DECISIONS 260); what they wrote until the freeze's reset must not
    // be lost to the next link.
    if (n == 0) {
      EXPECT_NE(r.err.find(", armed before the freeze 1 (kept 1) in "), std::string::npos) << r.err;
    } else {
      EXPECT_EQ(r.err.find(", armed before the freeze"), std::string::npos) << r.err;
    }
    // An increment too reads its mappings before the freeze (with the
    // flags PREV recorded, DECISIONS 264: no smaps walk of the target at
    // all) and plans its pages, and chooses the parent's, from the copy
    // after the release (DECISIONS 229): no page walk of the target inside
    // the window.
    EXPECT_NE(r.err.find(n == 0 ? "capture: maps (smaps read before)" : "capture: maps (flags from the parent)"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(r.err.find(", smaps in a second freeze"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("capture: memory plan"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("parent pages"), std::string::npos) << r.err;
    if (n > 0) {
      EXPECT_NE(r.err.find("trackers reused 1"), std::string::npos) << r.err;
      // Tracking decided the 32 MiB of pages (it read none of them).
      size_t at = r.err.find(", tracked ");
      ASSERT_NE(at, std::string::npos) << r.err;
      EXPECT_GE(std::strtoull(r.err.c_str() + at + 10, nullptr, 10), 32ull << 20) << r.err;
    }
  }
  EXPECT_EQ(children(), "");
  ASSERT_NO_FATAL_FAILURE(kill_program());
  ASSERT_EQ(::link(tmp_.file("link2.core").c_str(), image_path().c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// While the image is written from the copy (`-o -` into a pipe the test
// does not read yet), the dump's snapshot cgroup, named for its imgtool,
// holds the copy, a child of the program; once the dump has ended it is
// gone. This is the name the other tests' leftover checks look for.
TEST_F(Snapshot, CgroupNamedForTheDumpHoldsTheCopyWhileTheImageIsWritten) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_BIGMEM_PATH));
  HeldOutput d = spawn_held({imgtool(), "dump", "--pid", std::to_string(pid_), "-o", "-", "--short-freeze",
                             "--no-track-dirty"},
                            tmp_.file("dump.err"));
  ASSERT_GT(d.pid, 0);
  std::string cgroup = snapshot_cgroup_path(d.pid);
  // 64 MiB do not fit the pipe: the dump waits in write(2).
  EXPECT_TRUE(wait_until([&] { return pipe_full(d.out); }, 60)) << read_file(tmp_.file("dump.err"));
  std::string procs = read_file(cgroup + "/cgroup.procs");
  EXPECT_NE(procs, "") << cgroup << ": no copy in it";
  for (const std::string &copy : split_lines(procs)) {
    std::string status = read_file("/proc/" + copy + "/status");
    EXPECT_NE(status.find("\nPPid:\t" + std::to_string(pid_) + "\n"), std::string::npos) << copy << ":\n" << status;
  }
  int st = finish_held(d, image_path());
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "0x" << std::hex << st << "\n" << read_file(tmp_.file("dump.err"));
  EXPECT_EQ(access(cgroup.c_str(), F_OK), -1) << cgroup << " left behind";
  EXPECT_EQ(children(), "");
  ASSERT_NO_FATAL_FAILURE(kill_program());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// Two dumps at once, each in a pid namespace of its own (two containers
// sharing the cgroup hierarchy) where the same commands give its imgtool
// the same pid (sh is 1, python3 2, holding 32 MiB). Each has a snapshot
// cgroup of its own. When the name carried the pid alone, the second dump
// took the first one's cgroup for a leftover and emptied it, killing the
// copy the first was reading: "cannot read the page at ...: end of
// memory" (reproduced so with the old naming; decision 251).
TEST_F(Snapshot, DumpsInTwoPidNamespacesWhereImgtoolHasTheSamePid) {
  HeldOutput dumps[2];
  for (int i = 0; i < 2; i++) {
    std::string fifo = tmp_.file("ready" + std::to_string(i));
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    // The shell waits with builtins only, so that the pids are the same in
    // both namespaces; it kills python3 once the dump has ended.
    std::string script = "python3 -c \"import sys, time; b = bytearray(b'x' * (32 << 20)); "
                         "open(sys.argv[1], 'w').write('ready'); time.sleep(600)\" " + fifo +
                         " >/dev/null 2>&1 & read ready < " + fifo +
                         "; sh -c 'echo imgtool-pid $$ >&2; exec \"$0\" dump --pid \"$1\" -o - --short-freeze "
                         "--no-track-dirty' " + imgtool() + " $!; st=$?; kill -9 $!; exit $st";
    dumps[i] = spawn_held({"unshare", "--pid", "--kill-child", "--mount-proc", "sh", "-c", script},
                          tmp_.file("dump" + std::to_string(i) + ".err"));
    ASSERT_GT(dumps[i].pid, 0);
    if (i == 0) {
      // The first dump waits in write(2), reading from its copy.
      ASSERT_TRUE(wait_until([&] { return pipe_full(dumps[0].out); }, 60)) << read_file(tmp_.file("dump0.err"));
    }
  }
  int imgtool_pid[2] = {0, 0};
  for (int i : {1, 0}) {
    SCOPED_TRACE("dump " + std::to_string(i));
    std::string image = tmp_.file("ns" + std::to_string(i) + ".core");
    int st = finish_held(dumps[i], image);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
        << "0x" << std::hex << st << "\n" << read_file(tmp_.file("dump" + std::to_string(i) + ".err"));
    RunResult v = test::run({imgtool(), "verify", "--intact", image});
    EXPECT_TRUE(v.exited && v.exit_code == 0) << v.status() << "\n" << v.err;
    std::string err = read_file(tmp_.file("dump" + std::to_string(i) + ".err"));
    size_t at = err.find("imgtool-pid ");
    ASSERT_NE(at, std::string::npos) << err;
    imgtool_pid[i] = std::atoi(err.c_str() + at + 12);
  }
  // Else the names never met and this test shows nothing.
  EXPECT_GT(imgtool_pid[0], 0);
  EXPECT_EQ(imgtool_pid[0], imgtool_pid[1]) << "the two imgtools had different pids in their namespaces";
}

}  // namespace
}  // namespace ckpt::restoretest
