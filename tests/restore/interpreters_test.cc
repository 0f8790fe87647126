// Real programs restored and carrying on: python3 and bash print a counter
// to a file; after the restore the counter continues from where the dump
// left it, line after line with no gap or repeat.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class RestoreInterpreter : public RestoreTest {
 protected:
  std::string out_path() const { return tmp_.file("out.txt"); }

  // Complete lines of the output (a partial last line is left out).
  std::vector<std::string> lines() const {
    std::string text = read_file(out_path());
    if (!text.empty() && text.back() != '\n') text.erase(text.rfind('\n') + 1);
    return split_lines(text);
  }
  long last_counter() const {
    std::vector<std::string> l = lines();
    return l.empty() ? 0 : std::atol(l.back().c_str());
  }

  // Starts argv with stdout to out.txt, waits for a few lines, dumps with
  // --kill, restores in the foreground (on a thread), waits until the
  // counter is well past its value at the dump, kills the restored process
  // and checks imgtool passed on 128+SIGKILL. `check_line(i, line)` checks
  // line i (counted from 1).
  void run_case(const std::vector<std::string> &argv, bool (*check_line)(long, const std::string &)) {
    Program::Options o;
    o.log = log_path();
    o.stdout_file = out_path();
    o.cwd = dir();
    ASSERT_NO_FATAL_FAILURE(start_argv(argv, o));
    ASSERT_TRUE(wait_until([&] { return last_counter() >= 5; }, 30))
        << "no counter output; stdout:\n" << read_file(out_path()) << "\nstderr:\n" << log();
    ASSERT_NO_FATAL_FAILURE(dump_kill());
    long at_dump = last_counter();
    ASSERT_GE(at_dump, 5);

    RunResult r;
    std::atomic<bool> done{false};
    std::thread restorer([&] {
      r = restore(image_path(), {}, 90);
      done.store(true);
    });
    bool advanced = wait_until([&] { return done.load() || last_counter() >= at_dump + 5; }, 30) && !done.load();
    if (advanced) EXPECT_EQ(kill(pid_, SIGKILL), 0);
    else if (!done.load()) kill(pid_, SIGKILL);  // hung: do not wait for the hang guard
    restorer.join();
    ASSERT_TRUE(advanced) << "the counter did not get past " << at_dump << " after the restore (last "
                          << last_counter() << ")\nimgtool restore: " << r.status() << "\n"
                          << r.err << "\nstderr:\n" << log();
    EXPECT_TRUE(r.exited && r.exit_code == 128 + SIGKILL) << r.status() << "\n" << r.err;
    EXPECT_EQ(r.err, "");
    std::vector<std::string> l = lines();
    ASSERT_GE(l.size(), static_cast<size_t>(at_dump + 5));
    for (size_t i = 0; i < l.size(); i++)
      if (!check_line(static_cast<long>(i + 1), l[i])) {
        ADD_FAILURE() << "line " << i + 1 << " is \"" << l[i] << "\" (the dump was at " << at_dump << ")";
        break;
      }
  }
};

// A python3 program of tests/programs/scripts, run with `python3 -c`.
std::string script(const std::string &name) { return read_file(std::string(INTERPRETER_SCRIPTS_DIR) + "/" + name); }

bool counter_line(long i, const std::string &line) { return line == std::to_string(i); }
bool python_line(long i, const std::string &line) {
  return line == std::to_string(i) + " " + std::to_string(i);
}

TEST_F(RestoreInterpreter, Python) {
  ASSERT_EQ(access("/usr/bin/python3", X_OK), 0) << "no /usr/bin/python3 (scripts/setup.sh installs it)";
  run_case({"/usr/bin/python3", "-c", script("threaded_dict_counter.py")}, python_line);
}

// asyncio over AF_UNIX (issue 13): an echo server on a path and a client
// connected to it in the same event loop (epoll, the loop's self-pipe
// socketpair, the listener and both ends of the connection), dumped while
// an echo usually sits unread in the client's queue. The count and its
// echo carry on line after line.
TEST_F(RestoreInterpreter, PythonAsyncioUnixEcho) {
  ASSERT_EQ(access("/usr/bin/python3", X_OK), 0) << "no /usr/bin/python3 (scripts/setup.sh installs it)";
  run_case({"/usr/bin/python3", "-c", script("asyncio_unix_echo_counter.py")}, python_line);
}

// bash with a builtin-only loop: `read -t` on a FIFO it holds open
// read-write is its sleep, so it never has a child.
TEST_F(RestoreInterpreter, BashBuiltinLoop) {
  std::string fifo = tmp_.file("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  run_case({"/bin/bash", "-c",
            "exec 3<>\"$0\"; i=0; while :; do i=$((i+1)); echo $i; read -t 0.05 -u 3 x; done", fifo},
           counter_line);
}

// The loop from the brief: `sleep` is a child process, so the dump nearly
// always catches bash with a child: a process tree, restored whole (it
// used to retry the dump until it caught bash between two children).
TEST_F(RestoreInterpreter, BashWithSleepChild) {
  fail_on_leftovers_ = false;  // the restored bash's last `sleep` outlives it
  run_case({"/bin/bash", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done"}, counter_line);
}

}  // namespace
}  // namespace ckpt::restoretest
