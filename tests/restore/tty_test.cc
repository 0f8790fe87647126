// Terminals (issue 13 Terminals, issue 17 ptys): pty pairs a program
// opened (restore_pty.c), and a program on its controlling terminal
// restored by an imgtool restore running on a new terminal of another
// size, as a shell's job and as a pane's own command (restore_tty_job.c,
// tty_shell.c, terminal_session.h).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>

#include "restore_common.h"
#include "terminal_session.h"

namespace ckpt::restoretest {
namespace {

class PtyTest : public RestoreTest {
 protected:
  // start(program), dump_kill(), `imgtool info` shows each of `shown`, and
  // the restore passes. ASSERT_NO_FATAL_FAILURE.
  void dump_show_and_restore(const std::string &program, const std::vector<std::string> &shown) {
    ASSERT_NO_FATAL_FAILURE(start(program));
    ASSERT_NO_FATAL_FAILURE(dump_kill());
    RunResult info = test::run({imgtool(), "info", image_path()}, 60);
    for (const std::string &s : shown) EXPECT_NE(info.out.find(s), std::string::npos) << info.out;
    ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  }
};

// Before: dump refused the pair ("pty master /dev/ptmx"); the slave fd
// read EBADF after restore, its owner was 0:0.
TEST_F(PtyTest, PairWithSettingsAndQueuedBytesComesBack) {
  ASSERT_NO_FATAL_FAILURE(dump_show_and_restore(RESTORE_PTY_PATH, {"pty master", "raw, no echo, 33x111, packet mode"}));
}

// A `script`-like tree (restore_pty_script.c): the parent holds the
// master, the child leads its own session on the slave as its controlling
// terminal. Before: the child's slave was taken for the terminal the tree
// was run from and given imgtool's streams, and the parent's master came
// back as a pair of its own, connected to nothing. Now the pair is made
// once, the slave is the child's controlling terminal again with its
// group in the foreground, and a line typed on the master reaches the
// child, whose answer reaches the master.
TEST_F(PtyTest, PairSplitBetweenScriptAndItsChildComesBack) {
  ASSERT_NO_FATAL_FAILURE(dump_show_and_restore(
      RESTORE_PTY_SCRIPT_PATH, {"canonical, echo", "controlling terminal (its group in the foreground)"}));
}

// A console the program opened (issue 17): before, dump refused it (and
// earlier still it came back as /dev/null); now it is reopened by path
// when the same device is there, and the restore refuses with one line
// when another device is.
class ConsoleTest : public RestoreTest {
 protected:
  ConsoleTest() { compare_state_ = true; }
  std::string node() const { return tmp_.file("console"); }
};

TEST_F(ConsoleTest, VirtualConsoleIsReopened) {
  ASSERT_EQ(mknod(node().c_str(), S_IFCHR | 0600, makedev(4, 1)), 0) << strerror(errno);
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_CONSOLE_PATH, {node()}));
  ASSERT_EQ(program_->value("rdev"), "4:1");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(ConsoleTest, AnotherDeviceAtItsPathIsRefused) {
  compare_state_ = false;
  ASSERT_EQ(mknod(node().c_str(), S_IFCHR | 0600, makedev(4, 1)), 0) << strerror(errno);
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_CONSOLE_PATH, {node()}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(unlink(node().c_str()), 0);
  ASSERT_EQ(mknod(node().c_str(), S_IFCHR | 0600, makedev(1, 3)), 0);  // /dev/null's numbers
  go();
  expect_one_line_failure(restore(image_path()), "fd 45: " + node() + " is not the character device it was at the dump");
}

class TerminalJobTest : public RestoreTest {
 protected:
  std::string status_file() const { return tmp_.file("shell.status"); }
  std::string fg_file() const { return tmp_.file("shell.fg"); }
  std::string restore_log() const { return tmp_.file("restore.err"); }

  // Runs restore_tty_job on a 24x80 terminal (under tty_shell when
  // as_job), reads its KEY lines up to "ready", dumps it with --kill.
  void run_and_dump(bool as_job) {
    std::vector<std::string> argv = {RESTORE_TTY_JOB_PATH, go_path(), dir()};
    if (as_job) argv.insert(argv.begin(), {TTY_SHELL_PATH, tmp_.file("dumped.status"), tmp_.file("dumped.fg")});
    original_ = std::make_unique<TerminalSession>(argv, 24, 80, log_path());
    ASSERT_TRUE(original_->started());
    ASSERT_TRUE(original_->read_until("ready", 20)) << original_->output() << "\n" << log();
    std::string out = original_->output();
    size_t at = out.find("pid ");
    ASSERT_NE(at, std::string::npos) << out;
    pid_ = std::atoi(out.c_str() + at + 4);
    ASSERT_GT(pid_, 0);
    RunResult r = dump(pid_, image_path(), {"--kill"});
    ASSERT_TRUE(r.exited && r.exit_code == 0) << "dump: " << r.status() << "\n" << r.err;
    // The pane's command (or its shell) ends with the program.
    original_->wait_exit(20);
    ASSERT_TRUE(wait_until([&] { return !pid_exists(pid_); }, 10));
  }

  std::unique_ptr<TerminalSession> original_;
};

bool terminal_is_cooked(const struct termios &t) { return (t.c_lflag & ICANON) && (t.c_lflag & ECHO) && (t.c_iflag & ICRNL); }

// `imgtool restore` typed into a shell of a new 40x120 terminal: the
// program (a job of its old shell, not leading its session) gets its
// termios on the new terminal, the foreground, /dev/tty and a SIGWINCH
// with the new size; Ctrl-Z stops it and imgtool with it (the shell gets
// its terminal back as it was), `fg` goes on; after it exits the terminal
// is as imgtool found it. Before: the terminal stayed cooked, the program
// was in the background (SIGTTIN), /dev/tty gave ENXIO.
TEST_F(TerminalJobTest, ShellJobRestoredInANewTerminalOfAnotherSize) {
  ASSERT_NO_FATAL_FAILURE(run_and_dump(true));
  ASSERT_TRUE(write_file(dir() + "/newsize", "40 120\n"));
  ASSERT_TRUE(write_file(dir() + "/jobctl", ""));
  go();
  TerminalSession pane({TTY_SHELL_PATH, status_file(), fg_file(), imgtool(), "restore", image_path()}, 40, 120,
                       restore_log());
  ASSERT_TRUE(pane.started());
  struct termios before = pane.termios();
  ASSERT_TRUE(terminal_is_cooked(before));
  ASSERT_TRUE(pane.read_until("stop-me", 30)) << pane.output() << "\nrestore: " << read_file(restore_log())
                                              << "\nprogram: " << log();
  pane.type("\x1a");  // Ctrl-Z
  ASSERT_TRUE(wait_until([&] { return read_file(status_file()).find("stopped") != std::string::npos; }, 20))
      << "the shell did not see its job (imgtool) stop\n" << pane.output() << "\n" << log();
  EXPECT_TRUE(terminal_is_cooked(pane.termios())) << "the stopped job's termios were left on the shell's terminal";
  ASSERT_TRUE(write_file(fg_file(), ""));
  EXPECT_EQ(pane.wait_exit(60), 0) << pane.output() << "\nrestore: " << read_file(restore_log()) << "\nprogram: " << log();
  EXPECT_NE(pane.output().find("done"), std::string::npos) << pane.output();
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
  EXPECT_EQ(read_file(restore_log()), "");
  EXPECT_NE(read_file(status_file()).find("exit 0"), std::string::npos) << read_file(status_file());
}

// `imgtool restore` as a new pane's own command (tmux new-window 'imgtool
// restore F'): the program led its session on the old pane and leads a new
// one with this terminal as its controlling terminal. Before: setsid left
// it without one (ps showed ?), /dev/tty gave ENXIO.
TEST_F(TerminalJobTest, SessionLeaderRestoredAsAPaneCommand) {
  ASSERT_NO_FATAL_FAILURE(run_and_dump(false));
  ASSERT_TRUE(write_file(dir() + "/newsize", "50 132\n"));
  go();
  TerminalSession pane({imgtool(), "restore", image_path()}, 50, 132, restore_log());
  ASSERT_TRUE(pane.started());
  EXPECT_EQ(pane.wait_exit(60), 0) << pane.output() << "\nrestore: " << read_file(restore_log()) << "\nprogram: " << log();
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
  EXPECT_EQ(read_file(restore_log()), "");
  EXPECT_TRUE(terminal_is_cooked(pane.termios())) << "the program's termios were left on the terminal";
}

}  // namespace
}  // namespace ckpt::restoretest

namespace ckpt::restoretest {
namespace {

// The symptom end to end: `less` in a tmux pane, dumped with
// --kill, restored as the command of a new pane of another size; the pane
// shows the file redrawn and less takes keys. Before: a blank pane, the
// terminal left cooked, less without a controlling terminal.
class TmuxLessTest : public RestoreTest {
 protected:
  // The tmux server and its panes' processes become our children (we are
  // the subreaper) when it daemonizes: TearDown kills and reaps them.
  void SetUp() override {
    RestoreTest::SetUp();
    fail_on_leftovers_ = false;
  }
  void TearDown() override {
    tmux({"kill-server"});
    RestoreTest::TearDown();
  }
  RunResult tmux(const std::vector<std::string> &args) {
    std::vector<std::string> argv = {"tmux", "-L", socket_, "-f", "/dev/null"};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run(argv, 30);
  }
  std::string capture(const std::string &target) { return tmux({"capture-pane", "-p", "-t", target}).out; }
  std::string socket_ = "ckpt-tty-" + std::to_string(getpid());
};

TEST_F(TmuxLessTest, LessRedrawsInANewPaneAndTakesKeys) {
  if (test::run({"sh", "-c", "command -v tmux && command -v less"}, 10).exit_code != 0)
    GTEST_FAIL() << "tmux and less are needed (scripts/setup.sh installs them)";
  std::string text_path = tmp_.file("text");
  std::string text;
  for (int i = 1; i <= 500; i++) text += "line " + std::to_string(i) + " of the file\n";
  ASSERT_TRUE(write_file(text_path, text));
  // A session that stays, so that the server outlives less's; each pane
  // is a session of its own size (tmux 3.3a's server crashes on new-window
  // under window-size manual).
  ASSERT_EQ(tmux({"new-session", "-d", "-s", "keep", "exec sleep 600"}).exit_code, 0);
  // less under a shell that waits for it, as typed at a prompt: the shell
  // reaps it after the dump (tmux's server, as its parent, sometimes left
  // it a zombie holding its pid).
  RunResult w = tmux({"new-session", "-d", "-P", "-F", "#{pane_pid}", "-s", "old", "-x", "80", "-y", "24",
                      "less " + text_path + "; exit 0"});
  ASSERT_EQ(w.exit_code, 0) << w.err;
  pid_t shell = std::atoi(w.out.c_str());
  ASSERT_TRUE(wait_until(
      [&] {
        pid_ = std::atoi(read_file("/proc/" + std::to_string(shell) + "/task/" + std::to_string(shell) + "/children").c_str());
        return pid_ > 0;
      },
      10));
  ASSERT_TRUE(wait_until([&] { return capture("old").find("line 1 of the file") != std::string::npos; }, 20))
      << capture("old");
  RunResult d = dump(pid_, image_path(), {"--kill"});
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.err;
  ASSERT_TRUE(wait_until([&] { return !pid_exists(pid_); }, 10));

  std::string err = tmp_.file("restore.err");
  RunResult r = tmux({"new-session", "-d", "-s", "new", "-x", "100", "-y", "30",
                      "exec " + imgtool() + " restore " + image_path() + " 2>" + err});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(tmux({"display-message", "-p", "-t", "new", "#{window_width}x#{window_height}"}).out, "100x30\n");
  // Redrawn for 30 rows: lines 1..29 and the prompt.
  ASSERT_TRUE(wait_until([&] { return capture("new").find("line 29 of the file") != std::string::npos; }, 20))
      << "the restored less did not redraw:\n" << capture("new") << "\nrestore: " << read_file(err);
  EXPECT_NE(capture("new").find("line 1 of the file"), std::string::npos) << capture("new");
  tmux({"send-keys", "-t", "new", "G"});
  EXPECT_TRUE(wait_until([&] { return capture("new").find("line 500 of the file") != std::string::npos; }, 20))
      << "less did not take G:\n" << capture("new");
  tmux({"send-keys", "-t", "new", "q"});
  EXPECT_TRUE(wait_until([&] { return !pid_exists(pid_); }, 20)) << "less did not take q";
  EXPECT_EQ(read_file(err), "");
}

}  // namespace
}  // namespace ckpt::restoretest
