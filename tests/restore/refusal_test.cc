// Refused before anything is lost (issue 8): `imgtool dump` refuses a
// process holding what restore cannot bring back before it writes or kills
// anything, naming every offender in one line, and leaves the process as it
// was; `imgtool verify` and `imgtool info` give the verdict restore gives,
// including "not restorable here now".
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

using json = nlohmann::json;

class Refusal : public RestoreTest {
 protected:
  // A refused dump: one line "imgtool dump: ..." containing each of
  // `needles`, nothing on stdout, and no image or temporary file.
  void expect_refused(const RunResult &r, const std::vector<std::string> &needles) {
    ASSERT_TRUE(r.started);
    EXPECT_TRUE(r.exited) << r.status();
    EXPECT_NE(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "");
    std::vector<std::string> lines = r.err_lines();
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("imgtool dump: pid " + std::to_string(pid_) + ": ", 0), 0u) << lines[0];
    for (const std::string &n : needles) EXPECT_NE(lines[0].find(n), std::string::npos) << "no \"" << n << "\" in " << lines[0];
    EXPECT_NE(lines[0].find(": not supported"), std::string::npos) << lines[0];
    EXPECT_EQ(images_left(), "") << "a refused dump left files behind";
  }

  // Dumps (and kills) a copy of the counter program, then changes one byte
  // of the copy's build-id, keeping its inode, size and mtime; makes the
  // go file. `reason`: the refusal restore must give.
  void dump_then_rewrite_build_id(std::string &reason) {
    std::string copy = dir() + "/counter_copy";
    ASSERT_TRUE(write_file(copy, read_file(RESTORE_COUNTER_PATH)));
    ASSERT_EQ(chmod(copy.c_str(), 0755), 0);
    ASSERT_NO_FATAL_FAILURE(start(copy, {"exit:0"}));
    ASSERT_NO_FATAL_FAILURE(dump_kill());
    struct stat before;
    ASSERT_EQ(stat(copy.c_str(), &before), 0);
    // The NT_GNU_BUILD_ID note of a 20-byte (sha1) id: namesz 4, descsz 20,
    // type 3, "GNU": one byte of the id changes.
    std::string bytes = read_file(copy);
    const std::string note("\x04\0\0\0\x14\0\0\0\x03\0\0\0GNU\0", 16);
    size_t at = bytes.find(note);
    ASSERT_NE(at, std::string::npos) << "no build-id note in " << copy;
    bytes[at + note.size()] ^= 0x01;
    ASSERT_TRUE(write_file(copy, bytes));  // O_TRUNC: the same inode
    timespec times[2] = {before.st_atim, before.st_mtim};
    ASSERT_EQ(utimensat(AT_FDCWD, copy.c_str(), times, 0), 0);
    struct stat after;
    ASSERT_EQ(stat(copy.c_str(), &after), 0);
    ASSERT_EQ(after.st_ino, before.st_ino);
    ASSERT_EQ(after.st_size, before.st_size);
    // The go file first: a restore that is wrongly not refused runs the
    // program to its end and fails the test at once, instead of leaving it
    // waiting for go until the restore's hang guard (90 s) ends it.
    ASSERT_NO_FATAL_FAILURE(go());
    reason = "not restorable here now: mapped file " + copy + " is not the binary that was dumped (build-id differs)";
  }

  // Names in the work directory that an image or its temporary file would have.
  std::string images_left() const {
    std::string found;
    if (DIR *d = opendir(dir().c_str())) {
      while (dirent *e = readdir(d)) {
        std::string n = e->d_name;
        if (n.find("img.core") != std::string::npos) found += n + " ";
      }
      closedir(d);
    }
    return found;
  }

  // The original, untouched by the refused dump, checks its objects and
  // exits 0 once the go file appears.
  void expect_original_carries_on() {
    EXPECT_EQ(proc_ppid(pid_), getpid());
    ASSERT_NO_FATAL_FAILURE(expect_original_finishes(30));
    EXPECT_NE(log().find("PASS"), std::string::npos) << log();
  }


  // verify fails with exactly restore's reason, and info says the same.
  void expect_verify_info_agree_with_restore(const std::string &reason_start, const std::string &kind) {
    RunResult r = restore(image_path());
    expect_one_line_failure(r, reason_start);
    std::string reason = r.err_lines().at(0).substr(std::string("imgtool restore: " + image_path() + ": ").size());
    EXPECT_EQ(reason.rfind(reason_start, 0), 0u) << reason;
    RunResult v = imgtool_run({"verify", image_path()});
    EXPECT_TRUE(v.exited && v.exit_code == 1) << v.status();
    EXPECT_EQ(v.out, "");
    EXPECT_EQ(v.err, "imgtool verify: " + image_path() + ": " + reason + "\n");
    json j;
    ASSERT_NO_FATAL_FAILURE(info_json(&j));
    EXPECT_EQ(j["restorable"], false);
    EXPECT_EQ(j["not_restorable_because"], reason);
    EXPECT_EQ(j["not_restorable_kind"], kind);
    RunResult t = imgtool_run({"info", image_path()});
    std::string label = kind == "here_now" ? "restorable:  not here now (" : "restorable:  no (";
    EXPECT_NE(t.out.find(label), std::string::npos) << t.out;
  }
};

// A netlink socket and a userfaultfd: both named at once (the eventfd, the
// epoll fd and the POSIX timer beside them are restorable now and not
// named), and with --kill nothing is killed.
TEST_F(Refusal, DumpNamesEveryUnsupportedObjectAndKillsNothing) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_REFUSED_PATH, {"objects"}));
  RunResult r = dump(pid_, image_path(), {"--kill"});
  expect_refused(r, {"pid " + std::to_string(pid_) +
                     ": fd 43 socket (only AF_UNIX, TCP and UDP sockets are restored), fd 44 userfaultfd"});
  EXPECT_EQ(r.err.find("POSIX timer"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("eventpoll"), std::string::npos) << r.err;
  char s = proc_state(pid_);
  EXPECT_TRUE(s == 'S' || s == 'R') << "state " << s;
  EXPECT_NO_FATAL_FAILURE(expect_original_carries_on());
}

// A stopped process stays stopped after a refused dump, as after a good one.
TEST_F(Refusal, StoppedProcessStaysStopped) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_REFUSED_PATH, {"objects"}));
  ASSERT_EQ(kill(pid_, SIGSTOP), 0);
  ASSERT_TRUE(wait_until([&] { return proc_state(pid_) == 'T'; }, 10));
  expect_refused(dump(pid_, image_path(), {"--kill"}), {"fd 43 socket", "fd 44 userfaultfd"});
  // A thread the dumper let go re-enters the group stop on its way out of
  // the kernel; one wrongly continued never does (it polls for the go
  // file). Once every thread is in the group stop and untraced, only
  // SIGCONT runs it again: nothing more to wait for.
  EXPECT_TRUE(wait_until([&] { return test::all_threads_in_state(pid_, 'T'); }, 10))
      << "threads: " << test::thread_states(pid_);
  for (pid_t tid : test::task_tids(pid_)) EXPECT_EQ(test::tracer_pid(tid), 0) << "still traced: thread " << tid;
  ASSERT_EQ(kill(pid_, SIGCONT), 0);
  EXPECT_NO_FATAL_FAILURE(expect_original_carries_on());
}

// Signals arriving while the dumper borrows a thread for an injected
// syscall (a timer every millisecond) used to make the dump fail with
// "keeps stopping during an injected syscall" about half the time at 20 ms:
// the suppressed signal, sent again at once, stopped the thread again. The
// dump must get as far as its verdict every time.
TEST_F(Refusal, SignalStormDuringTheDump) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_REFUSED_PATH, {"storm"}));
  for (int i = 0; i < 10; i++) {
    SCOPED_TRACE("dump " + std::to_string(i));
    ASSERT_NO_FATAL_FAILURE(expect_refused(dump(pid_, image_path(), {"--kill"}), {"fd 43 userfaultfd"}));
  }
  EXPECT_NO_FATAL_FAILURE(expect_original_carries_on());
}

// A pty pair split over two processes of the tree (its master in a
// child, the slave in the root) was refused here; it comes back as one
// pair (decision 167): termios, window size, the queued bytes, and the
// child's master answering what the root writes on the slave.
TEST_F(Refusal, PtySplitOverTwoProcessesComesBack) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_REFUSED_PATH, {"pty"}));
  ASSERT_FALSE(program_->value("pts").empty());
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// A character device with state of its own (/dev/kmsg keeps a read
// position) cannot be reopened faithfully; /dev/null and /dev/urandom can.
TEST_F(Refusal, CharacterDeviceWithState) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_REFUSED_PATH, {"chardev"}));
  RunResult r = dump(pid_, image_path(), {"--kill"});
  expect_refused(r, {"fd 60 character device /dev/kmsg (1:11): not supported"});
  EXPECT_EQ(r.err.find("/dev/null"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("/dev/urandom"), std::string::npos) << r.err;
  EXPECT_NO_FATAL_FAILURE(expect_original_carries_on());
}

// The terminal the program was run from (its controlling terminal, its
// master held elsewhere, as by a terminal emulator) is not refused: it is
// reconnected to the restoring imgtool's (decision 27).
TEST_F(Refusal, ControllingTerminalIsReconnectedNotRefused) {
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);  // not inherited by the program
  ASSERT_GE(master, 0);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  std::string slave = ptsname(master);
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_CTTY_PATH, {slave}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  RunResult v = imgtool_run({"verify", image_path()});
  EXPECT_TRUE(v.exited && v.exit_code == 0) << v.status() << "\n" << v.err;
  EXPECT_NO_FATAL_FAILURE(restore_expect(0));
  close(master);
}

// Kernel objects restore cannot recreate (issue 13): each refused at dump
// with one line naming the pid, the fd and why, and the original carries on.
struct KernelObject {
  const char *kind;    ///< restore_refused's "kernel:KIND"
  const char *needle;  ///< in the refusal
};

class KernelObjectRefusal : public Refusal, public ::testing::WithParamInterface<KernelObject> {};

TEST_P(KernelObjectRefusal, RefusedAtDumpWithWhy) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_REFUSED_PATH, {std::string("kernel:") + GetParam().kind}));
  expect_refused(dump(pid_, image_path(), {"--kill"}), {GetParam().needle});
  EXPECT_NO_FATAL_FAILURE(expect_original_carries_on());
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, KernelObjectRefusal,
    ::testing::Values(
        KernelObject{"io_uring", "fd 70 io_uring instance (its rings and requests in flight cannot be captured)"},
        KernelObject{"perf_event", "fd 70 perf_event ("}, KernelObject{"bpf", "fd 70 bpf map ("},
        KernelObject{"userfaultfd", "fd 70 userfaultfd of the program's own ("},
        KernelObject{"pidfd", "fd 70 pidfd ("}, KernelObject{"fanotify", "fd 70 fanotify ("}),
    [](const ::testing::TestParamInfo<KernelObject> &info) { return std::string(info.param.kind); });

// --allow-unrestorable writes the image for gdb, marked not restorable,
// and verify, info and restore all say why in the same words.
TEST_F(Refusal, AllowUnrestorableWritesADebugImage) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_REFUSED_PATH, {"objects"}));
  RunResult k = dump(pid_, image_path(), {"--kill", "--allow-unrestorable"});
  EXPECT_NE(k.exit_code, 0);
  EXPECT_NE(k.err.find("conflict"), std::string::npos) << k.err;
  EXPECT_EQ(images_left(), "");
  RunResult r = dump(pid_, image_path(), {"--allow-unrestorable"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  RunResult intact = imgtool_run({"verify", "--intact", image_path()});
  EXPECT_TRUE(intact.exited && intact.exit_code == 0) << intact.err;
  expect_verify_info_agree_with_restore("not restorable: pid " + std::to_string(pid_) +
                                            ": fd 43 socket (only AF_UNIX, TCP and UDP sockets are restored), fd 44 userfaultfd",
                                        "unsupported");
  EXPECT_NO_FATAL_FAILURE(expect_original_carries_on());
}

// The pid is taken (the original still runs): verify and info say "not
// restorable here now" with restore's own reason. verify used to say "ok".
TEST_F(Refusal, VerifyAndInfoOnAPidInUse) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:0"}));
  RunResult d = dump(pid_, image_path());  // leave running
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  ASSERT_EQ(kill(pid_, SIGSTOP), 0);  // so it cannot exit meanwhile
  ASSERT_TRUE(wait_until([&] { return proc_state(pid_) == 'T'; }, 10));
  expect_verify_info_agree_with_restore(
      "not restorable here now: pid " + std::to_string(pid_) + " is in use by another process", "here_now");
  EXPECT_EQ(proc_state(pid_), 'T');
  ASSERT_EQ(kill(pid_, SIGCONT), 0);
  ASSERT_NO_FATAL_FAILURE(go());
  int st = 0;
  ASSERT_TRUE(program_->wait_exit(&st, 30));
  // Now it is free: verify says ok.
  RunResult v = imgtool_run({"verify", image_path()});
  EXPECT_TRUE(v.exited && v.exit_code == 0) << v.status() << "\n" << v.err;
}

// A file the process had open was replaced since the dump.
TEST_F(Refusal, VerifyAndInfoOnAReplacedFile) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_FDS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::string f = dir() + "/offset.txt";
  // Same bytes, another inode (written beside it first: an unlinked
  // inode's number would be reused at once).
  ASSERT_TRUE(write_file(f + ".new", read_file(f)));
  ASSERT_EQ(rename((f + ".new").c_str(), f.c_str()), 0);
  expect_verify_info_agree_with_restore("not restorable here now: fd 20: " + f + " has been replaced", "here_now");
  EXPECT_FALSE(pid_exists(pid_));
}

// A mapped binary rewritten in place, with its inode, size and mtime as at
// the dump, is told apart by its build-id (decisions 24, 212).
TEST_F(Refusal, VerifyAndInfoOnABinaryRewrittenInPlaceWithItsMtime) {
  std::string reason;
  ASSERT_NO_FATAL_FAILURE(dump_then_rewrite_build_id(reason));
  expect_verify_info_agree_with_restore(reason, "here_now");
  EXPECT_FALSE(pid_exists(pid_));
  // --lazy and the exec form (whose launcher checks as restore does) refuse
  // it too, before anything is created, within seconds.
  RunResult lazy = restore(image_path(), {"--lazy"}, 30);
  ASSERT_FALSE(lazy.timed_out) << "restore --lazy hung";
  expect_one_line_failure(lazy, reason);
  EXPECT_FALSE(pid_exists(pid_));
  std::string exec_form = dir() + "/refused.elf";
  RunResult converted = imgtool_run({"convert", image_path(), "--to", "exec", "-o", exec_form});
  ASSERT_TRUE(converted.exited && converted.exit_code == 0) << converted.err;
  for (const std::vector<std::string> &argv :
       {std::vector<std::string>{exec_form}, std::vector<std::string>{exec_form, "--lazy"}}) {
    RunResult r = test::run(argv, 30);
    ASSERT_FALSE(r.timed_out) << "the exec form hung";
    EXPECT_TRUE(r.exited && r.exit_code != 0) << r.status();
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find(reason), std::string::npos) << r.err;
    EXPECT_EQ(r.err_lines().size(), 1u) << r.err;
    EXPECT_FALSE(pid_exists(pid_));
  }
}

// DECISIONS 268: restore checks the mapped files' build-ids once its
// child is made, beside the child's start; the child waits for that
// verdict before it restores any fd. Refused there (the phase lines show
// the check after clone3), the child is killed and reaped before it
// restored anything, and the one line is the one a check before clone3
// gave.
TEST_F(Refusal, ABuildIdCheckedAfterTheChildIsMadeLeavesNothing) {
  std::string reason;
  ASSERT_NO_FATAL_FAILURE(dump_then_rewrite_build_id(reason));
  struct TraceTimes {
    TraceTimes() { setenv("CKPT_TRACE_TIMES", "1", 1); }
    ~TraceTimes() { unsetenv("CKPT_TRACE_TIMES"); }
  } trace;
  for (bool lazy : {false, true}) {
    SCOPED_TRACE(lazy ? "--lazy" : "eager");
    RunResult r = restore(image_path(), lazy ? std::vector<std::string>{"--lazy"} : std::vector<std::string>{}, 30);
    ASSERT_FALSE(r.timed_out) << "restore hung";
    EXPECT_TRUE(r.exited && r.exit_code != 0) << r.status();
    EXPECT_EQ(r.out, "");
    std::vector<std::string> lines;
    for (const std::string &l : r.err_lines())
      if (l.rfind("ckpt-times:", 0) != 0) lines.push_back(l);
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0], "imgtool restore: " + image_path() + ": " + reason) << r.err;
    size_t made = r.err.find("process created (clone3)");
    size_t checked = r.err.find("check: pids free");
    ASSERT_NE(made, std::string::npos) << "no child was made: " << r.err;
    EXPECT_LT(checked, made) << r.err;
    // The child never got past its wait: no fd of the image was restored.
    EXPECT_EQ(r.err.find("child: imgtool's checks passed"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("child: fds restored"), std::string::npos) << r.err;
    EXPECT_FALSE(pid_exists(pid_));
  }
}

}  // namespace
}  // namespace ckpt::restoretest
