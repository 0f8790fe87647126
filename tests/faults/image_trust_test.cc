// The privilege model (docs/SECURITY.md): a root restore of an image that
// another user could have written gives that user nothing they did not
// have; an unprivileged restore fails with one line naming the capability.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "faults_common.h"

namespace ckpt::faulttest {
namespace {

constexpr uid_t kUser = 4242;  // a numeric user with no passwd entry

class ImageTrust : public FaultTest {
 protected:
  // The program as user kUser (setpriv drops every capability with the
  // ids); its folder searchable so that it sees the go file.
  void start_as_user() {
    ASSERT_EQ(chmod(dir().c_str(), 0711), 0);
    restoretest::Program::Options o;
    o.log = log_path();
    std::string id = std::to_string(kUser);
    ASSERT_NE(test::find_tool({"setpriv"}), "") << "setpriv (util-linux) is needed";
    ASSERT_NO_FATAL_FAILURE(start_argv({test::find_tool({"setpriv"}), "--reuid=" + id, "--regid=" + id, "--clear-groups",
                                        "--inh-caps=-all", RESTORE_THREADS_PATH, go_path(), dir()},
                                       o));
  }
};

TEST_F(ImageTrust, RootProcessImageOwnedByAnotherUserIsRefused) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_THREADS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(chown(image_path().c_str(), kUser, kUser), 0);
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restoretest::restore(image_path());
  ASSERT_NO_FATAL_FAILURE(restoretest::expect_one_line_failure(r, "is owned by user 4242, and process " +
                                                                      std::to_string(pid_) + " runs as user 0"));
  EXPECT_NE(r.err.find("--trust-image"), std::string::npos) << r.err;
  EXPECT_FALSE(restoretest::pid_exists(pid_));
  // Trusted explicitly, it restores.
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--trust-image"}));
}

TEST_F(ImageTrust, ImageInAFolderWritableByOthersIsRefused) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_THREADS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(chmod(dir().c_str(), 0777), 0);
  RunResult r = restoretest::restore(image_path());
  ASSERT_NO_FATAL_FAILURE(restoretest::expect_one_line_failure(r, "its folder " + dir() + " is writable by other users"));
  // The sticky bit (as /tmp has) keeps others from replacing our file.
  ASSERT_EQ(chmod(dir().c_str(), 01777), 0);
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(ImageTrust, ImageWritableByOthersIsRefused) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_THREADS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(chmod(image_path().c_str(), 0666), 0);
  RunResult r = restoretest::restore(image_path());
  ASSERT_NO_FATAL_FAILURE(restoretest::expect_one_line_failure(r, "is writable by other users"));
  ASSERT_EQ(chmod(image_path().c_str(), 0600), 0);
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// An incremental image whose parent (which gives memory too) another user
// owns.
TEST_F(ImageTrust, ParentImageOwnedByAnotherUserIsRefused) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_THREADS_PATH));
  std::string parent = tmp_.file("parent.core");
  RunResult first = restoretest::dump(pid_, parent);
  ASSERT_TRUE(first.exited && first.exit_code == 0) << first.err;
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--parent", parent}));
  ASSERT_EQ(chown(parent.c_str(), kUser, kUser), 0);
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restoretest::restore(image_path());
  ASSERT_NO_FATAL_FAILURE(restoretest::expect_one_line_failure(r, parent + " is owned by user 4242"));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--trust-image"}));
}

// The user's own process in an image the user owns: nothing more than
// they had, so root restores it (as that user).
TEST_F(ImageTrust, UsersOwnProcessInTheirImageRestores) {
  ASSERT_NO_FATAL_FAILURE(start_as_user());
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(chown(image_path().c_str(), kUser, kUser), 0);
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// Not root, no CAP_CHECKPOINT_RESTORE: one line naming it, nothing started.
TEST_F(ImageTrust, UnprivilegedRestoreNamesTheMissingCapability) {
  ASSERT_NO_FATAL_FAILURE(start_as_user());
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(chown(image_path().c_str(), kUser, kUser), 0);
  ASSERT_NO_FATAL_FAILURE(go());
  std::string id = std::to_string(kUser);
  RunResult r = test::run({test::find_tool({"setpriv"}), "--reuid=" + id, "--regid=" + id, "--clear-groups", "--inh-caps=-all",
                           imgtool(), "restore", image_path()},
                          60);
  ASSERT_NO_FATAL_FAILURE(restoretest::expect_one_line_failure(r, "CAP_CHECKPOINT_RESTORE"));
  EXPECT_FALSE(restoretest::pid_exists(pid_));
}

}  // namespace
}  // namespace ckpt::faulttest
