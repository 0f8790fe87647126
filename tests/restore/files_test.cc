// Files that changed between the dump and the restore: tmpfs files stored
// in the image (dump --store-tmpfs-files) and recreated when gone, and a
// rotated log reopened as it is now (restore --reopen-changed-files).
#include <gtest/gtest.h>

#include <cstdio>
#include <sys/stat.h>
#include <unistd.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class RestoreFiles : public RestoreTest {
 protected:
  void TearDown() override {
    RestoreTest::TearDown();
    for (const std::string &p : shm_) unlink(p.c_str());
  }
  void start_files() {
    ASSERT_NO_FATAL_FAILURE(start(RESTORE_FILES_PATH));
    shm_ = {program_->value("map"), program_->value("held")};
    log_ = program_->value("log");
  }
  void remove_tmpfs_files() {
    for (const std::string &p : shm_) ASSERT_EQ(unlink(p.c_str()), 0) << p;
  }
  void rotate_log() {
    ASSERT_EQ(rename(log_.c_str(), (log_ + ".1").c_str()), 0);
    ASSERT_TRUE(write_file(log_, ""));
  }
  std::vector<std::string> shm_;
  std::string log_;
};

TEST_F(RestoreFiles, StoredTmpfsFilesComeBackAndRotatedLogIsReopened) {
  ASSERT_NO_FATAL_FAILURE(start_files());
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--store-tmpfs-files"}));
  ASSERT_NO_FATAL_FAILURE(remove_tmpfs_files());
  ASSERT_NO_FATAL_FAILURE(rotate_log());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--reopen-changed-files"}));
  struct stat st {};
  ASSERT_EQ(stat(shm_[0].c_str(), &st), 0) << "the mapped tmpfs file was not recreated";
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_size, 8192);
  std::string bytes = read_file(shm_[0]);
  ASSERT_EQ(bytes.size(), 8192u);
  EXPECT_EQ(bytes.substr(0, 13), "mapped-before");
  EXPECT_EQ(bytes.substr(4096, 12), "mapped-after") << "the restored mapping is not shared with the recreated file";
  EXPECT_EQ(read_file(shm_[1]), "held-open");
  EXPECT_EQ(read_file(log_), "after\n");
  EXPECT_EQ(read_file(log_ + ".1"), "before\n");
}

TEST_F(RestoreFiles, GoneTmpfsFileIsRefusedUnlessStored) {
  ASSERT_NO_FATAL_FAILURE(start_files());
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(remove_tmpfs_files());
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restore(image_path());
  ASSERT_NO_FATAL_FAILURE(expect_one_line_failure(r, shm_[0]));
  EXPECT_NE(r.err.find("--store-tmpfs-files"), std::string::npos) << r.err;
  EXPECT_FALSE(pid_exists(pid_));
}

TEST_F(RestoreFiles, RotatedLogIsRefusedUnlessReopenIsAsked) {
  ASSERT_NO_FATAL_FAILURE(start_files());
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--store-tmpfs-files"}));
  ASSERT_NO_FATAL_FAILURE(remove_tmpfs_files());
  ASSERT_NO_FATAL_FAILURE(rotate_log());
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restore(image_path());
  ASSERT_NO_FATAL_FAILURE(expect_one_line_failure(r, "replaced since the dump"));
  EXPECT_NE(r.err.find("--reopen-changed-files"), std::string::npos) << r.err;
  EXPECT_FALSE(pid_exists(pid_));
  // A refused restore recreates nothing.
  for (const std::string &p : shm_) EXPECT_NE(access(p.c_str(), F_OK), 0) << p << " exists after a refused restore";
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--reopen-changed-files"}));
}

}  // namespace
}  // namespace ckpt::restoretest
