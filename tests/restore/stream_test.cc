// Migration without a file: `imgtool dump --pid P -o - --kill | imgtool
// restore -`, the two joined by a pipe exactly as a shell joins them, and
// restore - refusing a truncated or damaged stream, or --lazy, with one
// line and nothing started.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "restore_common.h"

extern char **environ;

namespace ckpt::restoretest {
namespace {

// pid's descendants, zombies included, from /proc/PID/task/*/children.
std::vector<pid_t> descendants(pid_t pid) {
  std::vector<pid_t> out;
  for (pid_t tid : test::task_tids(pid)) {
    std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/children"));
    for (pid_t p; in >> p;) {
      out.push_back(p);
      for (pid_t q : descendants(p)) out.push_back(q);
    }
  }
  return out;
}

class RestoreStream : public RestoreTest {
 protected:
  // dump --pid pid_ -o - --kill | restore [restore_extra] -: once the dump
  // has ended (the program is gone), creates the go file; returns what
  // restore did, the restored program having run to its end. The
  // processes `reap` (a tree's, orphaned to us, the subreaper, as it is
  // killed) are reaped as their parent would, `reap_delay_ms` after the
  // dump ended (a parent slow to reap), while restore is running.
  RunResult migrate_through_pipe(const std::vector<std::string> &restore_extra = {},
                                 const std::vector<pid_t> &reap = {}, int reap_delay_ms = 0) {
    int p[2];
    EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
    std::vector<std::string> restore_argv = {imgtool(), "restore"};
    restore_argv.insert(restore_argv.end(), restore_extra.begin(), restore_extra.end());
    restore_argv.push_back("-");
    RunResult restored;
    std::thread restore_side([&] { restored = test::run(restore_argv, 90, p[0]); });

    std::string dump_err = tmp_.file("dump.err");
    std::string pid = std::to_string(pid_), tool = imgtool();
    const char *dump_argv[] = {tool.c_str(), "dump", "--pid", pid.c_str(), "-o", "-", "--kill", nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, dump_err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t dumper = -1;
    int rc = posix_spawn(&dumper, dump_argv[0], &fa, nullptr, const_cast<char **>(dump_argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);  // restore sees the end of the stream when the dump ends
    int st = -1;
    bool dumped = rc == 0 && test::wait_child_exit(dumper, &st, 120);
    EXPECT_TRUE(dumped && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        << "dump -o -: status 0x" << std::hex << st << "\n" << read_file(dump_err);
    int program_status = 0;
    EXPECT_TRUE(program_->wait_exit(&program_status, 10)) << "still alive after dump --kill";
    usleep(reap_delay_ms * 1000);
    // Until each is reaped, or no longer our child (ECHILD: restored anew,
    // imgtool restore's child now).
    for (pid_t p : reap)
      wait_until([&] { return waitpid(p, nullptr, WNOHANG) != 0; }, 10);
    go();
    restore_side.join();
    close(p[0]);
    return restored;
  }

  void expect_migrated(const RunResult &r) {
    ASSERT_TRUE(r.started);
    ASSERT_FALSE(r.timed_out) << "imgtool restore - hung; program stderr:\n" << log();
    EXPECT_TRUE(r.exited && r.exit_code == 0) << "imgtool restore -: " << r.status() << "\n"
                                              << r.err << "\nprogram stderr:\n" << log();
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(r.out, "");
  }

  // restore - with the file `image` on standard input.
  RunResult restore_from_stdin(const std::string &image, const std::vector<std::string> &extra = {}) {
    int fd = open(image.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0) << image;
    std::vector<std::string> argv = {imgtool(), "restore"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("-");
    RunResult r = test::run(argv, 90, fd);
    close(fd);
    return r;
  }
};

// Eight threads (TLS, masks, names, a robust mutex, a pthread_join in
// progress) arrive through the pipe.
TEST_F(RestoreStream, MultithreadedProgramThroughAPipe) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_THREADS_PATH));
  ASSERT_NO_FATAL_FAILURE(expect_migrated(migrate_through_pipe()));
  EXPECT_NE(log().find("PASS\n"), std::string::npos) << log();
  EXPECT_FALSE(pid_exists(pid_));
}

// Through standard input, the restored process equals the dumped one in
// its whole /proc state (restore_compare_expect, with `restore -`).
TEST_F(RestoreStream, WholeStateThroughStandardInput) {
  compare_state_ = true;
  restore_command_ = [&](const std::vector<std::string> &args) { return restore_from_stdin(image_path(), args); };
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_THREADS_PATH));
}

// Files at their offsets, a pipe with unread bytes, an unlinked file, the
// standard streams: the fd table arrives through the pipe.
TEST_F(RestoreStream, FileDescriptorsThroughAPipe) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_FDS_PATH));
  ASSERT_TRUE(program_->write_stdin("stdin-bytes-from-the-test"));
  ASSERT_NO_FATAL_FAILURE(expect_migrated(migrate_through_pipe()));
  EXPECT_NE(log().find("PASS\n"), std::string::npos) << log();
  EXPECT_EQ(read_file(dir() + "/append.log"), "before\nafter\n");
}

// A whole tree (threads, zombies, pipes between processes, shared memory),
// into a new pid namespace as a migration to a busy host would.
TEST_F(RestoreStream, ProcessTreeThroughAPipe) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_PATH));
  fail_on_leftovers_ = false;  // the dumped tree's zombies, reaped in TearDown
  ASSERT_NO_FATAL_FAILURE(expect_migrated(migrate_through_pipe({"--pidns"})));
  EXPECT_EQ(read_file(tmp_.file("report.txt")), "PASS\n");
}

// The same with the original pids on this host: the killed tree's
// processes are zombies until their parent (here the test, their
// subreaper) reaps them, here 300 ms after restore has the whole stream
// (decision 83: restore gives a zombie's pid a moment).
TEST_F(RestoreStream, ProcessTreeThroughAPipeWithItsPids) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_PATH));
  std::vector<pid_t> pids = descendants(pid_);
  ASSERT_EQ(pids.size(), 8u) << "A, G, B, C, D, T, Z1, Z2";
  ASSERT_NO_FATAL_FAILURE(expect_migrated(migrate_through_pipe({}, pids, 300)));
  EXPECT_EQ(read_file(tmp_.file("report.txt")), "PASS\n");
}

// The stream ends early (a dropped connection) or has a flipped byte: one
// line, and nothing was started.
TEST_F(RestoreStream, TruncatedOrDamagedStreamIsRefused) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_THREADS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  std::string bytes = read_file(image_path());
  ASSERT_GT(bytes.size(), 65536u);
  std::string cut = tmp_.file("cut.core");
  ASSERT_TRUE(write_file(cut, bytes.substr(0, bytes.size() / 2)));
  RunResult r = restore_from_stdin(cut);
  ASSERT_NO_FATAL_FAILURE(expect_one_line_failure(r, "imgtool restore: standard input: "));
  EXPECT_FALSE(pid_exists(pid_));

  std::string damaged = tmp_.file("damaged.core");
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x40;  // in stored memory
  ASSERT_TRUE(write_file(damaged, flipped));
  r = restore_from_stdin(damaged);
  ASSERT_NO_FATAL_FAILURE(expect_one_line_failure(r, "checksum"));
  EXPECT_FALSE(pid_exists(pid_));

  std::string empty = tmp_.file("empty");
  ASSERT_TRUE(write_file(empty, ""));
  r = restore_from_stdin(empty);
  ASSERT_NO_FATAL_FAILURE(expect_one_line_failure(r, "ended before any byte"));
  EXPECT_EQ(log(), "") << "the program ran";
  // The intact image, through standard input too, restores.
  r = restore_from_stdin(image_path());
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err << "\n" << log();
  EXPECT_NE(log().find("PASS\n"), std::string::npos);
}

// --lazy maps the image file; a stream has none: refused before reading.
TEST_F(RestoreStream, LazyFromAStreamIsRefused) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_THREADS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  RunResult r = restore_from_stdin(image_path(), {"--lazy"});
  ASSERT_NO_FATAL_FAILURE(expect_one_line_failure(r, "only be restored eagerly"));
  EXPECT_FALSE(pid_exists(pid_));
}

}  // namespace
}  // namespace ckpt::restoretest
