// Memory and fd state that restore must bring back exactly (issue 8,
// "Restore fidelity"): FIFO and pipe contents, locked memory, a deleted
// executable, aliased shared memory; and memory the dump cannot save,
// which it must refuse rather than store as zeros.
#include <gtest/gtest.h>

#include <cstdio>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <cerrno>
#include <sys/wait.h>
#include <unistd.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class RestoreFidelity : public RestoreTest {
 protected:
  // `imgtool dump --kill` refused with one line naming `needles`, wrote no
  // image and left the program running.
  void expect_dump_refused(const std::vector<std::string> &needles) {
    RunResult r = dump(pid_, image_path(), {"--kill"});
    ASSERT_TRUE(r.exited) << r.status();
    EXPECT_NE(r.exit_code, 0) << "the dump succeeded";
    std::vector<std::string> lines = r.err_lines();
    ASSERT_EQ(lines.size(), 1u) << "stderr:\n" << r.err;
    EXPECT_EQ(lines[0].rfind("imgtool dump: ", 0), 0u) << lines[0];
    for (const std::string &n : needles) EXPECT_NE(lines[0].find(n), std::string::npos) << "no \"" << n << "\" in: " << lines[0];
    EXPECT_NE(access(image_path().c_str(), F_OK), 0) << "an image was written";
    EXPECT_TRUE(pid_exists(pid_) && proc_state(pid_) != 'Z') << "the program did not survive the refused dump";
  }
};

// A FIFO holding "hello" with a reader and a writer fd: the bytes come
// back once, not once per fd. A FIFO and a pipe holding more than the
// default 64 KiB capacity keep their capacity and every byte.
TEST_F(RestoreFidelity, FifoAndPipeContentsComeBackOnce) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_FIFO_PATH));
}

// Sets /proc/sys/fs/pipe-max-size for the test, and back after. (root
// lacks CAP_SYS_RESOURCE here, so this limit binds it too.)
class PipeMaxSize {
 public:
  PipeMaxSize() : old_(read_file(kPath)) {}
  ~PipeMaxSize() {
    if (!old_.empty()) write_file(kPath, old_);
  }
  bool set(size_t bytes) { return write_file(kPath, std::to_string(bytes) + "\n"); }
  void reset() { write_file(kPath, old_); }

 private:
  static constexpr const char *kPath = "/proc/sys/fs/pipe-max-size";
  std::string old_;
};

// A pipe whose capacity cannot be restored (here: above a lowered
// fs.pipe-max-size) fails the restore with one line instead of blocking
// forever in the refill.
TEST_F(RestoreFidelity, PipeTooFullForTheCapacityHereFails) {
  PipeMaxSize limit;
  if (!limit.set(4 << 20)) GTEST_SKIP() << "cannot raise fs.pipe-max-size";
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_FIFO_PATH, {"huge"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_TRUE(limit.set(1 << 20));
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restore(image_path(), {}, 60);
  expect_one_line_failure(r, "capacity of 2097152 bytes");
  EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " exists after a failed restore";
}

TEST_F(RestoreFidelity, LockedMemoryStaysLocked) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_MLOCK_PATH));
}

TEST_F(RestoreFidelity, LockedMemoryStaysLockedLazy) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_MLOCK_PATH, {"--lazy"}));
}

// /proc/self/exe of a program whose executable was deleted names the same
// "(deleted)" file after the restore, not imgtool.
TEST_F(RestoreFidelity, DeletedExecutableKeepsItsName) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_DELETED_EXE_PATH));
  EXPECT_EQ(program_->value("exe"), dir() + "/deleted-exe (deleted)");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_NE(access((dir() + "/deleted-exe").c_str(), F_OK), 0) << "the recreated executable kept its name";
}

// When another file has the deleted executable's name by now (an upgraded
// binary), restore refuses with one line rather than point /proc/PID/exe
// at something else.
TEST_F(RestoreFidelity, DeletedExecutableWhoseNameIsTakenIsRefused) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_DELETED_EXE_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_TRUE(write_file(dir() + "/deleted-exe", "a newer binary\n"));
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restore(image_path(), {}, 60);
  expect_one_line_failure(r, "deleted executable " + dir() + "/deleted-exe");
  EXPECT_EQ(read_file(dir() + "/deleted-exe"), "a newer binary\n");
  EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " exists after a refused restore";
}

// An unlinked name of a file still linked in another folder: a copy would
// not be that file, so the dump refuses before --kill.
TEST_F(RestoreFidelity, UnlinkedFileLinkedInAnotherFolderIsRefusedAtDump) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_UNLINKED_FILES_PATH, {"elsewhere"}));
  ASSERT_NO_FATAL_FAILURE(expect_dump_refused({"first-name", "still linked under a name in another folder"}));
}

// One shared anonymous object mapped three times stays one object.
TEST_F(RestoreFidelity, SharedAnonymousMemoryMappedTwiceStillAliases) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_SHARED_ALIAS_PATH));
}

TEST_F(RestoreFidelity, SharedAnonymousMemoryMappedTwiceStillAliasesLazy) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_SHARED_ALIAS_PATH, {"--lazy"}));
}

// --lazy gives the memory map of an eager restore (no VMA split per stored
// range, [stack] still MAP_GROWSDOWN), and pages not yet in stay right
// through fork, mremap and MADV_DONTNEED. The background copy is held back
// (CKPT_LAZY_NO_BACKGROUND) so that those happen while pages are missing.
TEST_F(RestoreFidelity, LazyRestoreKeepsTheMemoryMap) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_LAZY_MAPS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  setenv("CKPT_LAZY_NO_BACKGROUND", "1", 1);
  restore_expect(0, {"--lazy"});
  unsetenv("CKPT_LAZY_NO_BACKGROUND");
}

TEST_F(RestoreFidelity, LazyRestoreKeepsTheMemoryMapWithBackgroundCopy) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_LAZY_MAPS_PATH, {"--lazy"}));
}

// With --detach the helper outlives imgtool and serves the process to the
// end; it then exits by itself.
TEST_F(RestoreFidelity, LazyDetachedRestoreIsServedToTheEnd) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_LAZY_MAPS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restore(image_path(), {"--lazy", "--detach"}, 60);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  int st = 0;
  ASSERT_TRUE(wait_until([&] { return waitpid(pid_, &st, WNOHANG) == pid_; }, 30)) << "the restored program did not finish";
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "status 0x" << std::hex << st << "\n" << log();
  EXPECT_NE(log().find("PASS"), std::string::npos) << log();
  // The helper, our child too now, exits once every page is in.
  EXPECT_TRUE(wait_until([&] { return waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD; }, 30))
      << "the lazy-pages helper is still running";
}

TEST_F(RestoreFidelity, EagerRestoreKeepsTheMemoryMap) {
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_LAZY_MAPS_PATH));
}

// memfd_secret pages cannot be read from outside: the dump refuses.
TEST_F(RestoreFidelity, SecretMemoryIsRefusedAtDump) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_UNSUPPORTED_MEMORY_PATH, {"secretmem"}));
  if (!program_->value("skip").empty()) GTEST_SKIP() << "this kernel has no " << program_->value("skip");
  std::string start = program_->value("start");
  ASSERT_NO_FATAL_FAILURE(expect_dump_refused({"pid " + std::to_string(pid_), start + "-", "secret memory"}));
}

// Pages of a deleted file mapped past its end raise SIGBUS and cannot be
// read: the dump refuses rather than storing them as zeros.
TEST_F(RestoreFidelity, UnreadablePagesAreRefusedAtDump) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_UNSUPPORTED_MEMORY_PATH, {"past-eof"}));
  unsigned long long start = std::stoull(program_->value("start"), nullptr, 16);
  char page[64];
  std::snprintf(page, sizeof page, "cannot read the page at 0x%llx", start + 4096);
  ASSERT_NO_FATAL_FAILURE(expect_dump_refused({"pid " + std::to_string(pid_), page}));
}

// An AIO context (io_setup) cannot be recreated at its ring's address
// with its in-flight requests: the dump refuses (issue 17).
TEST_F(RestoreFidelity, AioContextIsRefusedAtDump) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_UNSUPPORTED_MEMORY_PATH, {"aio"}));
  std::string start = program_->value("start");
  ASSERT_NO_FATAL_FAILURE(expect_dump_refused({"pid " + std::to_string(pid_), start + "-", "AIO context"}));
}

// Sets vm.nr_hugepages to at least `want` for the test, and back after.
// The setting is global: tests that change it hold an exclusive lock so
// that ctest -j does not run two of them at once.
class HugePages {
 public:
  explicit HugePages(int want) {
    lock_ = open("/tmp/ckpt-test-nr_hugepages.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_ >= 0) flock(lock_, LOCK_EX);
    old_ = read_file(kPath);
    if (old_.empty() || std::atoi(old_.c_str()) >= want) return;
    changed_ = write_file(kPath, std::to_string(want) + "\n");
  }
  ~HugePages() {
    put_back();
    if (lock_ >= 0) close(lock_);
  }
  void put_back() {
    if (changed_) write_file(kPath, old_);
    changed_ = false;
  }
  /// Shrinks the pool to the huge pages in use (the kernel frees only free
  /// ones), so that none is free; put_back() grows it again.
  bool leave_none_free() {
    int in_use = meminfo("HugePages_Total:") - free_pages();
    changed_ = write_file(kPath, std::to_string(in_use) + "\n");
    return changed_;
  }
  static int free_pages() { return meminfo("HugePages_Free:"); }

 private:
  static int meminfo(const std::string &field) {
    for (const std::string &l : split_lines(read_file("/proc/meminfo")))
      if (l.rfind(field, 0) == 0) return std::atoi(l.c_str() + field.size());
    return 0;
  }
  static constexpr const char *kPath = "/proc/sys/vm/nr_hugepages";
  std::string old_;
  bool changed_ = false;
  int lock_ = -1;
};

// MAP_HUGETLB memory, private and shared, comes back as hugetlb memory
// with its bytes.
TEST_F(RestoreFidelity, HugetlbMemoryComesBackAsHugetlb) {
  HugePages pages(4);
  if (pages.free_pages() < 3) GTEST_SKIP() << "fewer than 3 free huge pages (vm.nr_hugepages could not be raised)";
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_HUGETLB_PATH));
}

TEST_F(RestoreFidelity, HugetlbMemoryComesBackAsHugetlbLazy) {
  HugePages pages(4);
  if (pages.free_pages() < 3) GTEST_SKIP() << "fewer than 3 free huge pages (vm.nr_hugepages could not be raised)";
  ASSERT_NO_FATAL_FAILURE(start_dump_restore(RESTORE_HUGETLB_PATH, {"--lazy"}));
}

// Without enough free huge pages the restore refuses before it starts.
TEST_F(RestoreFidelity, HugetlbMemoryWithoutHugePagesIsRefused) {
  HugePages pages(4);
  if (pages.free_pages() < 3) GTEST_SKIP() << "fewer than 3 free huge pages (vm.nr_hugepages could not be raised)";
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_HUGETLB_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_TRUE(pages.leave_none_free()) << "cannot lower vm.nr_hugepages";
  ASSERT_LT(HugePages::free_pages(), 3) << "huge pages stay free after lowering vm.nr_hugepages";
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restore(image_path(), {}, 60);
  expect_one_line_failure(r, "huge pages of 2048 kB");
  EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " exists after a refused restore";
}

}  // namespace
}  // namespace ckpt::restoretest
