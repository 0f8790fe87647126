// `imgtool diff A B` and gdb's `ckpt diff OTHER` on two checkpoints of a
// program that, between them, changed one global, opened one file and
// moved one thread from read() to poll(): exactly those show.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sys/syscall.h>

#include "dump_common.h"

namespace ckpt::dumptest {
namespace {

using json = nlohmann::json;

u_int64_t hex_value(const json &j) { return std::stoull(j.get<std::string>(), nullptr, 16); }

// In /proc/PID/task/TID/syscall, the number of the system call it blocks in.
long blocked_syscall(pid_t pid, pid_t tid) {
  std::string text = read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/syscall");
  return text.empty() ? -2 : std::strtol(text.c_str(), nullptr, 10);
}

class ImageDiff : public ::testing::Test {
 protected:
  void SetUp() override {
    opened_ = tmp_.file("opened-between");
    target_ = std::make_unique<Target>(std::vector<std::string>{DUMP_DIFF_PATH, opened_});
    ASSERT_TRUE(target_->ready()) << target_->error();
    pid_ = target_->pid();
    global_ = std::stoull(target_->value("global"), nullptr, 16);
    mover_ = std::stoi(target_->value("mover"));
    ASSERT_TRUE(test::wait_until([&] { return blocked_syscall(pid_, pid_) == SYS_read && blocked_syscall(pid_, mover_) == SYS_read; }, 10));
    a_ = tmp_.file("a.core");
    b_ = tmp_.file("b.core");
    expect_success(dump(pid_, a_));
    ASSERT_TRUE(target_->write_stdin("go\n"));
    ASSERT_TRUE(test::wait_until([&] { return blocked_syscall(pid_, mover_) == SYS_poll; }, 10));
    ASSERT_TRUE(test::wait_until([&] { return blocked_syscall(pid_, pid_) == SYS_read; }, 10));
    expect_success(dump(pid_, b_));
  }

  TempDir tmp_;
  std::string opened_, a_, b_;
  std::unique_ptr<Target> target_;
  pid_t pid_ = 0, mover_ = 0;
  u_int64_t global_ = 0;
};

TEST_F(ImageDiff, ShowsTheChangedGlobalTheOpenedFileAndTheMovedThread) {
  RunResult r = test::run({imgtool(), "diff", a_, b_, "--json"}, 120);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_EQ(r.err, "");
  json d = json::parse(r.out);
  EXPECT_FALSE(d["same"].get<bool>());

  // Memory: the global's page differs in exactly one byte (1 -> 2); no
  // other page of the program's own mappings changed.
  int global_runs = 0;
  for (const json &m : d["memory"]) {
    SCOPED_TRACE(m.dump());
    if (m["path"] != DUMP_DIFF_PATH) continue;
    ASSERT_EQ(m["change"], "changed");
    ASSERT_LE(hex_value(m["start"]), global_);
    ASSERT_GT(hex_value(m["end"]), global_);
    EXPECT_EQ(m["bytes_differ"], 1);
    EXPECT_EQ(m["pages"], 1);
    global_runs++;
  }
  EXPECT_EQ(global_runs, 1) << d["memory"].dump(1);

  // Threads: the mover's pc moved (read -> poll); the main thread is back
  // in the same read() with the same pc.
  bool mover_moved = false;
  for (const json &t : d["threads"]) {
    SCOPED_TRACE(t.dump());
    EXPECT_EQ(t["change"], "changed");
    if (t["tid"] == mover_) mover_moved = t.contains("registers") && t["registers"].contains("rip");
    if (t["tid"] == pid_) {
      EXPECT_FALSE(t.contains("registers") && t["registers"].contains("rip"));
    }
  }
  EXPECT_TRUE(mover_moved) << d["threads"].dump(1);

  // Fds: one opened, the file named on the command line; nothing else.
  ASSERT_EQ(d["fds"].size(), 1u) << d["fds"].dump(1);
  EXPECT_EQ(d["fds"][0]["change"], "opened");
  EXPECT_EQ(d["fds"][0]["path"], opened_);
  EXPECT_EQ(d["fds"][0]["type"], "regular");

  EXPECT_TRUE(d["signals"].empty()) << d["signals"].dump(1);
  EXPECT_TRUE(d["process"].empty()) << d["process"].dump(1);
}

TEST_F(ImageDiff, TextFormAndGdbCommandAgree) {
  RunResult text = test::run({imgtool(), "diff", a_, b_}, 120);
  ASSERT_TRUE(text.exited && text.exit_code == 0) << text.status() << "\n" << text.err;
  EXPECT_NE(text.out.find("opened    fd "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(opened_), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("tid " + std::to_string(mover_)), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(" rip "), std::string::npos) << text.out;

  // gdb on A: `ckpt diff B` prints the same text as imgtool.
  RunResult g = run_merged({imgtool(), "gdb", a_, DUMP_DIFF_PATH, "--", "-batch", "-ex", "ckpt diff " + b_});
  ASSERT_TRUE(g.exited) << g.status() << "\n" << g.out;
  EXPECT_EQ(g.exit_code, 0) << g.out;
  EXPECT_NE(g.out.find(text.out.substr(text.out.find("memory:"))), std::string::npos)
      << "gdb:\n" << g.out << "\nimgtool:\n" << text.out;

  // A checkpoint compared with itself: no differences.
  RunResult same = test::run({imgtool(), "diff", a_, a_}, 120);
  ASSERT_TRUE(same.exited && same.exit_code == 0) << same.err;
  EXPECT_NE(same.out.find("no differences"), std::string::npos) << same.out;
}

TEST(ImageDiffErrors, OneLineForBadInput) {
  TempDir tmp;
  std::string junk = tmp.file("junk");
  ASSERT_TRUE(write_file(junk, "not an image"));
  for (const std::vector<std::string> &argv :
       {std::vector<std::string>{imgtool(), "diff", junk, junk}, {imgtool(), "diff", junk},
        {imgtool(), "diff", tmp.file("missing"), junk}}) {
    RunResult r = test::run(argv, 60);
    ASSERT_TRUE(r.exited) << r.status();
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.err_lines().size(), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("imgtool diff: ", 0), 0u) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

}  // namespace
}  // namespace ckpt::dumptest
