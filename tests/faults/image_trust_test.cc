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
  void start_as_user(uid_t user = kUser) {
    ASSERT_EQ(chmod(dir().c_str(), 0711), 0);
    restoretest::Program::Options o;
    o.log = log_path();
    std::string id = std::to_string(user);
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

// restore --pidns as that user, still without any capability on the host:
// imgtool makes a user namespace of its own that maps the user's ids (pid
// namespace's clone3 set_tid needs CAP_CHECKPOINT_RESTORE only in the
// namespace's owner), and the program restores with its pid and passes.
TEST_F(ImageTrust, UnprivilegedPidnsRestoreRunsInItsOwnUserNamespace) {
  ASSERT_NO_FATAL_FAILURE(start_as_user());
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(chown(image_path().c_str(), kUser, kUser), 0);
  // The restored program opens its log again, as the user.
  ASSERT_EQ(chown(log_path().c_str(), kUser, kUser), 0);
  ASSERT_NO_FATAL_FAILURE(go());
  auto passes = [&] {
    std::string text = log();
    size_t n = 0;
    for (size_t at = text.find("PASS"); at != std::string::npos; at = text.find("PASS", at + 1)) n++;
    return n;
  };
  size_t before = passes();
  std::string id = std::to_string(kUser);
  RunResult r = test::run({test::find_tool({"setpriv"}), "--reuid=" + id, "--regid=" + id, "--clear-groups",
                           "--inh-caps=-all", imgtool(), "restore", "--pidns", image_path()},
                          90);
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err << "\nprogram stderr:\n" << log();
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(passes(), before + 1) << log();
}

// restore --pidns --lazy as that user: the userfaultfd --lazy needs is not
// the user's to create here (vm.unprivileged_userfaultfd = 0, /dev/userfaultfd
// root's, no CAP_SYS_PTRACE): one line saying so and what to do instead,
// and nothing runs (DECISIONS 279).
TEST_F(ImageTrust, UnprivilegedLazyRestoreSaysWhatLazyNeeds) {
  if (test::read_text_file("/proc/sys/vm/unprivileged_userfaultfd") != "0\n")
    GTEST_SKIP() << "vm.unprivileged_userfaultfd is not 0: every user may create a userfaultfd here";
  ASSERT_NO_FATAL_FAILURE(start_as_user());
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(chown(image_path().c_str(), kUser, kUser), 0);
  ASSERT_EQ(chown(log_path().c_str(), kUser, kUser), 0);
  ASSERT_NO_FATAL_FAILURE(go());
  std::string before = log();
  std::string id = std::to_string(kUser);
  RunResult r = test::run({test::find_tool({"setpriv"}), "--reuid=" + id, "--regid=" + id, "--clear-groups",
                           "--inh-caps=-all", imgtool(), "restore", "--pidns", "--lazy", image_path()},
                          90);
  ASSERT_NO_FATAL_FAILURE(restoretest::expect_one_line_failure(
      r, "--lazy needs userfaultfd, which this user may not create (Operation not permitted: "
         "vm.unprivileged_userfaultfd is 0"));
  EXPECT_NE(r.err.find("restore without --lazy, or as root"), std::string::npos) << r.err;
  EXPECT_EQ(log(), before) << "the program ran";
  // Without --lazy the same restore works.
  RunResult eager = test::run({test::find_tool({"setpriv"}), "--reuid=" + id, "--regid=" + id, "--clear-groups",
                               "--inh-caps=-all", imgtool(), "restore", "--pidns", image_path()},
                              90);
  EXPECT_TRUE(eager.exited && eager.exit_code == 0) << eager.status() << "\n" << eager.err << "\n" << log();
}

// Another user's process in the user's own --pidns restore (trusted, so
// that the image trust rule does not refuse it first): only the user's ids
// exist in its namespace. One line, nothing runs.
TEST_F(ImageTrust, UnprivilegedPidnsRestoreOfAnotherUsersProcessIsOneLine) {
  ASSERT_NO_FATAL_FAILURE(start_as_user(kUser + 1));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(chown(image_path().c_str(), kUser, kUser), 0);
  ASSERT_EQ(chmod(log_path().c_str(), 0666), 0);  // its files open for the user: the ids are what is refused
  ASSERT_NO_FATAL_FAILURE(go());
  std::string id = std::to_string(kUser);
  RunResult r = test::run({test::find_tool({"setpriv"}), "--reuid=" + id, "--regid=" + id, "--clear-groups",
                           "--inh-caps=-all", imgtool(), "restore", "--pidns", "--trust-image", image_path()},
                          60);
  ASSERT_NO_FATAL_FAILURE(restoretest::expect_one_line_failure(r, "only root can restore"));
  EXPECT_FALSE(restoretest::pid_exists(pid_));
}

}  // namespace
}  // namespace ckpt::faulttest
