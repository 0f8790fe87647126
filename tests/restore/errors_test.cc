// Restores that must fail: non-zero exit, exactly one line on stderr
// starting "imgtool restore: ", and no process left behind.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "restore_common.h"
#include "file_size.h"
#include "synthetic.h"

namespace ckpt::restoretest {
namespace {

class RestoreErrors : public RestoreTest {
 protected:
  // The restore failed and left nothing: the pid is free, no child.
  void expect_failed_cleanly(const RunResult &r, const std::string &needle) {
    expect_one_line_failure(r, needle);
    EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " exists after a failed restore (state "
                                   << proc_state(pid_) << ")";
  }
  // start(program), dump_kill(), `change` (what happened to the world after
  // the dump), go(), and the restore fails cleanly naming `needle`. Call
  // through ASSERT_NO_FATAL_FAILURE.
  void expect_refused_after(const std::string &program, const std::function<void()> &change,
                            const std::string &needle) {
    ASSERT_NO_FATAL_FAILURE(start(program));
    ASSERT_NO_FATAL_FAILURE(dump_kill());
    ASSERT_NO_FATAL_FAILURE(change());
    ASSERT_NO_FATAL_FAILURE(go());
    expect_failed_cleanly(restore(image_path()), needle);
  }
};

std::vector<Elf64_Phdr> read_phdrs(const std::string &path) {
  std::vector<Elf64_Phdr> out;
  std::string f = read_file(path);
  if (f.size() < sizeof(Elf64_Ehdr)) return out;
  Elf64_Ehdr eh;
  std::memcpy(&eh, f.data(), sizeof eh);
  size_t phnum = eh.e_phnum;
  if (phnum == PN_XNUM) {
    Elf64_Shdr sh0;
    if (eh.e_shoff + sizeof sh0 > f.size()) return out;
    std::memcpy(&sh0, f.data() + eh.e_shoff, sizeof sh0);
    phnum = sh0.sh_info;
  }
  for (size_t i = 0; i < phnum; i++) {
    Elf64_Phdr ph;
    size_t at = eh.e_phoff + i * sizeof ph;
    if (at + sizeof ph > f.size()) break;
    std::memcpy(&ph, f.data() + at, sizeof ph);
    out.push_back(ph);
  }
  return out;
}

// Offset of a byte in the middle of the largest PT_LOAD holding its own
// data (zero segments all share the one zero block: not those).
off_t byte_in_a_data_segment(const std::string &path) {
  std::vector<Elf64_Phdr> phdrs = read_phdrs(path);
  off_t best = -1;
  uint64_t best_size = 0;
  for (const Elf64_Phdr &ph : phdrs) {
    if (ph.p_type != PT_LOAD || ph.p_filesz == 0) continue;
    int sharing = 0;
    for (const Elf64_Phdr &o : phdrs)
      if (o.p_type == PT_LOAD && o.p_filesz && o.p_offset == ph.p_offset) sharing++;
    if (sharing == 1 && ph.p_filesz > best_size) {
      best_size = ph.p_filesz;
      best = static_cast<off_t>(ph.p_offset + ph.p_filesz / 2);
    }
  }
  return best;
}

// Offset of a byte in the middle of the first PT_NOTE.
off_t byte_in_the_notes(const std::string &path) {
  for (const Elf64_Phdr &ph : read_phdrs(path))
    if (ph.p_type == PT_NOTE && ph.p_filesz > 64) return static_cast<off_t>(ph.p_offset + ph.p_filesz / 2);
  return -1;
}

// A byte of memory data flipped: the segment checksum catches it. (--lazy
// skips memory checksums by design, so that restore time does not grow
// with memory size; `imgtool verify` still checks them.)
TEST_F(RestoreErrors, DamagedMemorySegment) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:0"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  off_t at = byte_in_a_data_segment(image_path());
  ASSERT_GT(at, 0);
  ASSERT_TRUE(test::flip_byte(image_path(), at));
  ASSERT_NO_FATAL_FAILURE(go());
  std::string pidfile = tmp_.file("restored.pid");
  expect_failed_cleanly(restore(image_path()), "checksum");
  expect_failed_cleanly(restore(image_path(), {"--detach", "--pidfile", pidfile}), "checksum");
  EXPECT_FALSE(access(pidfile.c_str(), F_OK) == 0) << "a failed restore left a pid file";
  EXPECT_EQ(read_file(tmp_.file("report.txt")), "") << "the damaged image ran";
}

// A byte of the notes flipped: refused, with --lazy too.
TEST_F(RestoreErrors, DamagedNotes) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:0"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  off_t at = byte_in_the_notes(image_path());
  ASSERT_GT(at, 0);
  ASSERT_TRUE(test::flip_byte(image_path(), at));
  ASSERT_NO_FATAL_FAILURE(go());
  expect_failed_cleanly(restore(image_path()), "");
  expect_failed_cleanly(restore(image_path(), {"--lazy"}), "");
  EXPECT_EQ(read_file(tmp_.file("report.txt")), "") << "the damaged image ran";
}

// A pid file that cannot be written fails the restore before anything
// runs (DECISIONS 274), detached or not, with --pidns or not: one line,
// the program never ran, its pid is free, and the next restore works. A
// symbolic link is refused as before; an existing pid file keeps its
// contents when the restore fails.
TEST_F(RestoreErrors, UnwritablePidFileStartsNothing) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:0"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  std::string link = tmp_.file("link.pid");
  ASSERT_EQ(symlink(tmp_.file("nowhere").c_str(), link.c_str()), 0);
  for (std::vector<std::string> form : {std::vector<std::string>{"--detach"}, std::vector<std::string>{},
                                        std::vector<std::string>{"--pidns", "--detach"},
                                        std::vector<std::string>{"--pidns"}}) {
    std::string what;
    for (const std::string &a : form) what += " " + a;
    std::vector<std::string> args = form;
    args.insert(args.end(), {"--pidfile", "/nonexistent/pf"});
    SCOPED_TRACE("restore" + what);
    expect_failed_cleanly(restore(image_path(), args), "cannot write the pid file /nonexistent/pf");
    args = form;
    args.insert(args.end(), {"--pidfile", link});
    expect_failed_cleanly(restore(image_path(), args), "is a symbolic link");
    EXPECT_NE(access(tmp_.file("nowhere").c_str(), F_OK), 0) << "written through the link";
    EXPECT_EQ(read_file(tmp_.file("report.txt")), "") << "the program ran";
  }
  // A damaged image: an existing pid file is left as it was.
  std::string pidfile = tmp_.file("old.pid");
  ASSERT_TRUE(write_file(pidfile, "1\n"));
  off_t at = byte_in_a_data_segment(image_path());
  ASSERT_GT(at, 0);
  ASSERT_TRUE(test::flip_byte(image_path(), at));
  expect_failed_cleanly(restore(image_path(), {"--detach", "--pidfile", pidfile}), "checksum");
  EXPECT_EQ(read_file(pidfile), "1\n");
  ASSERT_TRUE(test::flip_byte(image_path(), at));
  // Nothing was left running: the same image restores now, pid file and all.
  RunResult r = restore(image_path(), {"--pidfile", pidfile});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_EQ(read_file(pidfile), std::to_string(pid_) + "\n");
  EXPECT_NE(read_file(tmp_.file("report.txt")), "") << "the restored program did not run";
}

TEST_F(RestoreErrors, PidInUse) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:0"}));
  RunResult d = dump(pid_, image_path());  // leave running
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  ASSERT_NO_FATAL_FAILURE(go());  // the original sees it too: it exits 0 soon
  // Hold the original while we restore: SIGSTOP, so it cannot exit yet.
  ASSERT_EQ(kill(pid_, SIGSTOP), 0);
  ASSERT_TRUE(wait_until([&] { return proc_state(pid_) == 'T'; }, 10));
  RunResult r = restore(image_path());
  // The line names the pid and its current owner.
  expect_one_line_failure(r, "pid " + std::to_string(pid_) + " is in use by another process (restore_counter)");
  // The original is untouched (still ours, still stopped) and runs on.
  EXPECT_EQ(proc_ppid(pid_), getpid());
  EXPECT_EQ(proc_state(pid_), 'T');
  ASSERT_EQ(kill(pid_, SIGCONT), 0);
  int st = 0;
  ASSERT_TRUE(program_->wait_exit(&st, 30));
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st;
}

TEST_F(RestoreErrors, MappedFileTouched) {
  ASSERT_NO_FATAL_FAILURE(expect_refused_after(
      RESTORE_MEMORY_PATH,
      [&] {
        // A new mtime, same size and content.
        std::string f = dir() + "/private.dat";
        struct timespec times[2] = {{0, UTIME_OMIT}, {1000000000, 0}};
        ASSERT_EQ(utimensat(AT_FDCWD, f.c_str(), times, 0), 0);
      },
      "private.dat"));
}

TEST_F(RestoreErrors, MappedFileGrew) {
  ASSERT_NO_FATAL_FAILURE(expect_refused_after(
      RESTORE_MEMORY_PATH,
      [&] {
        std::string f = dir() + "/shared.dat";
        int fd = open(f.c_str(), O_WRONLY | O_APPEND);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(write(fd, "more", 4), 4);
        close(fd);
      },
      "shared.dat"));
}

TEST_F(RestoreErrors, MappedFileRemoved) {
  ASSERT_NO_FATAL_FAILURE(expect_refused_after(
      RESTORE_MEMORY_PATH,
      [&] {
        ASSERT_EQ(unlink((dir() + "/private.dat").c_str()), 0);
      },
      "private.dat"));
}

// A failure late in the restore, in the child (after its fds were
// rearranged): the reason still reaches imgtool's one line.
TEST_F(RestoreErrors, WorkingDirectoryRemoved) {
  ASSERT_NO_FATAL_FAILURE(expect_refused_after(
      RESTORE_PROCESS_PATH,
      [&] {
        ASSERT_EQ(rmdir((dir() + "/sub dir").c_str()), 0);
      },
      "sub dir"));
  EXPECT_EQ(log(), "") << "the program ran";
}

// A file the process had open read-write is gone: refused, naming it.
TEST_F(RestoreErrors, OpenedFileRemoved) {
  ASSERT_NO_FATAL_FAILURE(expect_refused_after(
      RESTORE_FDS_PATH,
      [&] {
        ASSERT_EQ(rename((dir() + "/append.log").c_str(), (dir() + "/renamed.log").c_str()), 0);
      },
      "append.log"));
  EXPECT_EQ(log(), "") << "the program ran";
}

// A file the process had open that was truncated since the dump is not the
// file it had open: refused, naming it (docs/DECISIONS.md). One that only
// grew (a log) is restored: see OpenedFileGrewIsFine.
TEST_F(RestoreErrors, OpenedFileTruncated) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_FDS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::string f = dir() + "/offset.txt";
  ASSERT_EQ(truncate(f.c_str(), 0), 0);
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restore(image_path());
  expect_failed_cleanly(r, "offset.txt");
}

TEST_F(RestoreErrors, OpenedFileReplaced) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_FDS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::string f = dir() + "/offset.txt";
  std::string copy = f + ".new";
  {
    int in = open(f.c_str(), O_RDONLY), out = open(copy.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(in, 0);
    ASSERT_GE(out, 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) ASSERT_EQ(write(out, buf, n), n);
    close(in);
    close(out);
  }
  ASSERT_EQ(rename(copy.c_str(), f.c_str()), 0);
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restore(image_path());
  expect_failed_cleanly(r, "offset.txt");
}

// The restoring user (nobody) may read everything the restore needs but
// lacks the privilege to restore pids: the message must say so plainly.
// The program is a copy in the test's own directory, so that the result
// does not depend on where the checkout lives (a build tree under a 0700
// /root is out of nobody's reach and gave "Permission denied" instead).
TEST_F(RestoreErrors, NotPermitted) {
  std::string setpriv = test::find_tool({"setpriv"});
  ASSERT_FALSE(setpriv.empty()) << "no setpriv (scripts/setup.sh installs util-linux)";
  std::string program = tmp_.file("restore_counter");
  RunResult cp = test::run({"cp", RESTORE_COUNTER_PATH, program});
  ASSERT_TRUE(cp.exited && cp.exit_code == 0) << cp.err;
  ASSERT_EQ(chmod(program.c_str(), 0755), 0);
  ASSERT_NO_FATAL_FAILURE(start(program, {"exit:0"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  // nobody must be able to read the image and the program: only the
  // privilege is missing. Every directory above them must be searchable.
  ASSERT_EQ(chmod(dir().c_str(), 0755), 0);
  ASSERT_EQ(chmod(image_path().c_str(), 0644), 0);
  for (std::string d = dir(); d.size() > 1; d = d.substr(0, d.rfind('/') > 0 ? d.rfind('/') : 1)) {
    struct stat st;
    ASSERT_EQ(stat(d.c_str(), &st), 0) << d;
    ASSERT_TRUE(st.st_mode & S_IXOTH) << d << " is not searchable by others: set TMPDIR elsewhere";
  }
  RunResult r = test::run({setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", imgtool(), "restore",
                           image_path()},
                          60);
  expect_failed_cleanly(r, "not permitted: user 65534 may not restore");
  EXPECT_EQ(read_file(tmp_.file("report.txt")), "");
}

uint64_t host_xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

// An image from a CPU with an XSAVE feature this one lacks.
TEST_F(RestoreErrors, MissingCpuFeature) {
  uint64_t have = host_xcr0(), missing = 0;
  for (int bit = 2; bit < 63 && !missing; bit++)
    if (!(have & (1ull << bit))) missing = 1ull << bit;
  ASSERT_NE(missing, 0u);
  test::SyntheticOptions so;
  so.threads = 1;
  so.pid = 4242;
  test::SyntheticImage s = test::make_synthetic(so);
  ASSERT_EQ(s.notes.identity.records.size(), 1u);
  s.notes.identity.records[0].xsave_features = 3 | missing;
  ASSERT_TRUE(test::write_file(image_path(), test::encode_image(s)));
  pid_ = so.pid;
  bool existed = pid_exists(pid_);
  expect_one_line_failure(restore(image_path()), "XSAVE");
  if (!existed) {
    EXPECT_FALSE(pid_exists(pid_));
  }
}

// Kernel objects restore may not support yet: either the restored program
// finds the object working, or `imgtool dump --kill` refuses the process
// before anything is written or killed (issue 8: restore used to be the
// one refusing, after the dump had killed the process).
class RestoreKinds : public RestoreTest, public ::testing::WithParamInterface<const char *> {};

TEST_P(RestoreKinds, WorksOrRefusedAtDump) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_KINDS_PATH, {GetParam()}));
  RunResult d = dump(pid_, image_path(), {"--kill"});
  if (d.exited && d.exit_code != 0) {
    std::vector<std::string> lines = d.err_lines();
    ASSERT_EQ(lines.size(), 1u) << d.err;
    EXPECT_EQ(lines[0].rfind("imgtool dump: pid " + std::to_string(pid_) + ": ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find("not supported"), std::string::npos) << lines[0];
    EXPECT_FALSE(access(image_path().c_str(), F_OK) == 0) << "a refused dump wrote the image";
    char s = proc_state(pid_);
    EXPECT_TRUE(s == 'S' || s == 'R') << "the refused process is in state " << s;
    return;
  }
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  int status = 0;
  ASSERT_TRUE(program_->wait_exit(&status, 10)) << "still alive after dump --kill";
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restore(image_path());
  EXPECT_TRUE(r.exited && r.exit_code == 0) << "dumped, so restore must bring it back: " << r.status() << "\n"
                                            << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
}

INSTANTIATE_TEST_SUITE_P(Objects, RestoreKinds,
                         ::testing::Values("socketpair", "eventfd", "timerfd", "epoll", "signalfd", "posix-timer",
                                           "inotify"),
                         [](const ::testing::TestParamInfo<const char *> &i) {
                           std::string n = i.param;
                           for (char &c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

}  // namespace
}  // namespace ckpt::restoretest
