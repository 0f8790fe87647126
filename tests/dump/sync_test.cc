// `imgtool dump --sync` (DECISIONS.md, Dump): the durable dump. Without it
// the image is complete and renamed into place when dump returns, as after
// gcore or criu dump; with it the data and the name are on disk too. Both
// must give the same intact image, to a file and through standard output
// (a pipe cannot be synced, a file on standard output can).
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump_common.h"

namespace ckpt::dumptest {
namespace {

TEST(DumpSync, SyncedDumpIsIntactAndAlone) {
  Target t({DUMP_BIGMEM_PATH, "24"});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  std::string dest = tmp.file("img.core");
  expect_success(dump(t.pid(), dest, {"--sync"}));
  RunResult v = verify_intact(dest);
  EXPECT_EQ(v.exit_code, 0) << v.status() << "\n" << v.err;
  EXPECT_EQ(dir_listing(tmp.path()), std::vector<std::string>{"img.core"});
  expect_running_untraced(t.pid());
}

TEST(DumpSync, PlainAndSyncedDumpsHoldTheSameMemory) {
  Target t({DUMP_BIGMEM_PATH, "24"});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  expect_success(dump(t.pid(), tmp.file("plain.core")));
  expect_success(dump(t.pid(), tmp.file("synced.core"), {"--sync"}));
  struct stat a {}, b {};
  ASSERT_EQ(stat(tmp.file("plain.core").c_str(), &a), 0);
  ASSERT_EQ(stat(tmp.file("synced.core").c_str(), &b), 0);
  EXPECT_EQ(a.st_size, b.st_size);
  EXPECT_EQ(a.st_mode & 07777, 0600u);
  EXPECT_EQ(b.st_mode & 07777, 0600u);
  for (const char *f : {"plain.core", "synced.core"}) {
    RunResult v = verify_intact(tmp.file(f));
    EXPECT_EQ(v.exit_code, 0) << f << ": " << v.status() << "\n" << v.err;
  }
}

TEST(DumpSync, SyncThroughAPipeIsNotAnError) {
  Target t({DUMP_BIGMEM_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  // test::run reads standard output through a pipe, which fsync refuses
  // (EINVAL): --sync has nothing to sync there and must still succeed.
  RunResult r = test::run({imgtool(), "dump", "--pid", std::to_string(t.pid()), "-o", "-", "--sync"}, 120);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  ASSERT_GE(r.out.size(), 4u);
  EXPECT_EQ(r.out.substr(0, 4), "\x7f" "ELF");
}

TEST(DumpSync, SyncToAFileOnStandardOutput) {
  Target t({DUMP_BIGMEM_PATH});
  ASSERT_TRUE(t.ready()) << t.error();
  TempDir tmp;
  std::string dest = tmp.file("out.core");
  RunResult r = test::run({"/bin/sh", "-c", "exec \"$0\" dump --pid \"$1\" -o - --sync > \"$2\"", imgtool(),
                           std::to_string(t.pid()), dest},
                          120);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  RunResult v = verify_intact(dest);
  EXPECT_EQ(v.exit_code, 0) << v.status() << "\n" << v.err;
}

TEST(DumpSync, HelpSaysWhatPlainDumpPromises) {
  RunResult r = test::run({imgtool(), "dump", "--help"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--sync"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("page cache"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace ckpt::dumptest
