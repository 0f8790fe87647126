// libckpt (<ckpt/ckpt.h>): ckpt_checkpoint's three-way return, CKPT_KILL,
// its failure paths, ckpt_exclude from inside and from `imgtool dump`, and
// linking against the installed tree through pkg-config. The program is
// tests/programs/libckpt_self.c; the restored copies run under `imgtool
// restore` like every restore test's.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <thread>
#include <cstdio>
#include <cstdlib>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

using test::run;

class Libckpt : public RestoreTest {
 protected:
  void SetUp() override {
    RestoreTest::SetUp();
    // The imgtool under test, whatever is installed (libckpt's own search
    // order is tested by the pkg-config test and the "not found" case).
    setenv("CKPT_IMGTOOL", imgtool().c_str(), 1);
  }
  void start_mode(const std::vector<std::string> &args) { start(LIBCKPT_SELF_PATH, args); }
  // The original, having said "ready", exits by itself (status expected).
  void expect_original_exit(int code) {
    int status = 0;
    ASSERT_TRUE(program_->wait_exit(&status, 30)) << "the original did not exit\n" << log();
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == code)
        << "wait status 0x" << std::hex << status << "\nstderr:\n" << log();
    ASSERT_FALSE(pid_exists(pid_));
  }
  // The original, having checkpointed itself with CKPT_KILL, was killed.
  void expect_original_killed() {
    int status = 0;
    ASSERT_TRUE(program_->wait_exit(&status, 30)) << log();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "wait status 0x" << std::hex << status << "\nstderr:\n" << log();
  }
  static long long allocated_bytes(const std::string &path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? (long long)st.st_blocks * 512 : -1;
  }
};

TEST_F(Libckpt, OriginalSeesTheIdRestoredSeesZero) {
  ASSERT_NO_FATAL_FAILURE(start_mode({"checkpoint", image_path()}));
  EXPECT_GT(std::atoll(program_->value("id").c_str()), 0) << log();
  EXPECT_EQ(program_->value("original_ok"), "1") << log();
  ASSERT_NO_FATAL_FAILURE(expect_original_exit(0));
  // The image is an ordinary one: the dumper left its own process out.
  RunResult v = run({imgtool(), "verify", image_path()});
  EXPECT_TRUE(v.exited && v.exit_code == 0) << v.out << v.err;
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(Libckpt, KillEndsTheOriginal) {
  ASSERT_NO_FATAL_FAILURE(start_mode({"kill", image_path()}));
  ASSERT_NO_FATAL_FAILURE(expect_original_killed());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// A caller with an attached SysV shm segment checkpoints itself like
// `imgtool dump` would: the segment, with its id and bytes, is in the
// image, and the restored copy finds it attached again.
TEST_F(Libckpt, AttachedSysvShmComesBack) {
  ASSERT_NO_FATAL_FAILURE(start_mode({"sysvshm", image_path()}));
  ASSERT_NO_FATAL_FAILURE(expect_original_killed());
  RunResult i = run({imgtool(), "info", image_path()});
  EXPECT_NE(i.out.find("shm " + program_->value("shmid") + " key 0x0"), std::string::npos) << i.out << i.err;
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// The same without CKPT_KILL: the original runs on and exits, taking its
// segment with it; the image restores it.
TEST_F(Libckpt, AttachedSysvShmComesBackAfterTheOriginalExits) {
  ASSERT_NO_FATAL_FAILURE(start_mode({"sysvshm-run", image_path()}));
  ASSERT_NO_FATAL_FAILURE(expect_original_exit(0));  // 0: the checkpoint returned an id
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(Libckpt, FailuresReturnNegativeErrnoAndLeaveNothing) {
  ASSERT_NO_FATAL_FAILURE(start_mode({"fail"}));
  EXPECT_EQ(program_->value("notdir"), std::to_string(-ENOTDIR));
  EXPECT_EQ(program_->value("nodir"), std::to_string(-ENOENT));
  EXPECT_EQ(program_->value("badflags"), std::to_string(-EINVAL));
  EXPECT_EQ(program_->value("exclude_unaligned"), std::to_string(-EINVAL));
  EXPECT_EQ(program_->value("exclude_file"), std::to_string(-EINVAL));
  EXPECT_EQ(program_->value("exclude_hole"), std::to_string(-ENOMEM));
  EXPECT_EQ(program_->value("exclude_ok"), "0");
  EXPECT_EQ(program_->value("noimgtool"), std::to_string(-ENOENT));
  // A helper that exits without a result; the program's own child keeps
  // its wait status; a program reaping every child (the helper too) gets
  // the same answer.
  EXPECT_EQ(program_->value("helperdied"), std::to_string(-EIO));
  EXPECT_EQ(program_->value("child_status"), "7");
  EXPECT_EQ(program_->value("helperreaped"), std::to_string(-EIO));
  // imgtool refuses a process holding a netlink socket.
  EXPECT_EQ(program_->value("refused"), std::to_string(-EIO));
  EXPECT_NE(log().find("socket"), std::string::npos) << log();
  EXPECT_EQ(program_->value("leftover_children"), "0");
  EXPECT_EQ(program_->value("leftover_files"), "0");
  EXPECT_EQ(program_->value("thread_runs"), "1");
  ASSERT_NO_FATAL_FAILURE(expect_original_exit(0));
}

// The helper SIGKILLed while it writes the image (the temporary file
// exists): the caller gets -EIO and neither the file nor the temporary one
// is left.
TEST_F(Libckpt, HelperKilledMidDumpLeavesNothing) {
  std::atomic<bool> done{false}, killed{false};
  std::string dir = this->dir();
  std::thread killer([&] {
    // Writing: the helper (the imgtool whose command line names our image)
    // holds the image open in dir, unnamed until complete (O_TMPFILE:
    // "DIR/#INO (deleted)" in /proc/PID/fd; ".NAME.tmp-*" without it).
    auto writes_into_dir = [&](const std::string &pid) {
      std::string fds = "/proc/" + pid + "/fd";
      bool found = false;
      if (DIR *d = opendir(fds.c_str())) {
        while (dirent *e = readdir(d)) {
          char target[4096];
          ssize_t len = readlink((fds + "/" + e->d_name).c_str(), target, sizeof target - 1);
          std::string t = len > 0 ? std::string(target, size_t(len)) : "";
          if (t.rfind(dir + "/", 0) == 0 && (t.find(" (deleted)") != std::string::npos || t.find(".tmp-") != std::string::npos))
            found = true;
        }
        closedir(d);
      }
      return found;
    };
    while (!done) {
      if (DIR *p = opendir("/proc")) {
        while (dirent *e = readdir(p)) {
          std::string cmd = read_file(std::string("/proc/") + e->d_name + "/cmdline");
          if (cmd.find("--libckpt-caller") != std::string::npos && cmd.find(dir) != std::string::npos &&
              writes_into_dir(e->d_name) && kill(std::atoi(e->d_name), SIGKILL) == 0)
            killed = true;
        }
        closedir(p);
      }
      if (killed) return;
      usleep(500);
    }
  });
  start_mode({"helperkilled", image_path()});
  done = true;
  killer.join();
  ASSERT_TRUE(program_ && program_->ready()) << log();
  ASSERT_TRUE(killed) << "the helper was never seen writing\n" << log();
  EXPECT_EQ(program_->value("helperkilled"), std::to_string(-EIO));
  EXPECT_EQ(program_->value("leftover_files"), "0");
  EXPECT_EQ(program_->value("leftover_children"), "0");
  ASSERT_NO_FATAL_FAILURE(expect_original_exit(0));
}

TEST_F(Libckpt, ConcurrentCallsBothSucceed) {
  ASSERT_NO_FATAL_FAILURE(start_mode({"concurrent", tmp_.file("a.core"), tmp_.file("b.core")}));
  long long a = 0, b = 0;
  ASSERT_EQ(std::sscanf(program_->value("ids").c_str(), "%lld %lld", &a, &b), 2) << log();
  EXPECT_GT(a, 0);
  EXPECT_GT(b, 0);
  EXPECT_NE(a, b);
  ASSERT_NO_FATAL_FAILURE(expect_original_exit(0));
}

TEST_F(Libckpt, ExcludedPagesAreLeftOutAndComeBackZero) {
  std::string a = tmp_.file("a.core");
  ASSERT_NO_FATAL_FAILURE(start_mode({"exclude", a, image_path()}));
  ASSERT_NO_FATAL_FAILURE(expect_original_exit(0));
  long long size_a = allocated_bytes(a), size_b = allocated_bytes(image_path());
  // 16 MiB + 8 MiB of filled pages are not in B.
  EXPECT_GE(size_a - size_b, (24ll << 20) - (1ll << 20)) << "A " << size_a << " B " << size_b;
  // The restored copy checks the ranges and checkpoints itself again.
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(Libckpt, ImgtoolDumpFromOutsideHonoursExclusions) {
  ASSERT_NO_FATAL_FAILURE(start_mode({"outside"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  // 32 MiB of filled pages are not in it.
  EXPECT_LT(allocated_bytes(image_path()), 16ll << 20);
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// CKPT_EXEC: the image is the self-restoring form, run as ./FILE.
TEST_F(Libckpt, ExecFormRunsAsAnExecutable) {
  ASSERT_NO_FATAL_FAILURE(start_mode({"exec", image_path()}));
  EXPECT_GT(std::atoll(program_->value("exec").c_str()), 0) << log();
  ASSERT_NO_FATAL_FAILURE(expect_original_exit(0));
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = run({image_path()});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err << "\n" << log();
}

// `cmake --install` into a temporary prefix, then the example built with
// nothing but `pkg-config --cflags --libs ckpt` from that prefix, run
// against the installed library and imgtool.
TEST(LibckptInstalled, PkgConfigLinksTheExample) {
  TempDir prefix;
  RunResult inst = run({CKPT_CMAKE_COMMAND, "--install", CKPT_BUILD_DIR, "--prefix", prefix.path()}, 120);
  ASSERT_TRUE(inst.exited && inst.exit_code == 0) << inst.out << inst.err;
  std::string libdir = prefix.path() + "/" CKPT_INSTALL_LIBDIR;
  std::string exe = prefix.file("selfckpt");
  RunResult cc = run({"sh", "-c",
                      "PKG_CONFIG_PATH='" + libdir + "/pkgconfig' && export PKG_CONFIG_PATH && cc '" CKPT_SOURCE_DIR
                      "/examples/selfckpt.c' $(pkg-config --cflags --libs ckpt) -o '" + exe + "'"});
  ASSERT_TRUE(cc.exited && cc.exit_code == 0) << cc.out << cc.err;
  std::string image = prefix.file("self.core");
  RunResult r = run({"env", "LD_LIBRARY_PATH=" + libdir, "CKPT_IMGTOOL=" + prefix.path() + "/bin/imgtool", exe, image});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << r.out << r.err;
  EXPECT_NE(r.out.find("original: 42 steps done"), std::string::npos) << r.out;
  RunResult v = run({prefix.path() + "/bin/imgtool", "verify", image});
  EXPECT_TRUE(v.exited && v.exit_code == 0) << v.out << v.err;
}

}  // namespace
}  // namespace ckpt::restoretest
