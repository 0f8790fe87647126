// MAP_SHARED|MAP_ANONYMOUS memory of a forked tree is stored once and
// restored shared (issue 9, FORMAT.md §9.23): tests/programs/
// restore_shared_anon_tree.c maps 32 MiB (A) and 4 MiB (B) shared, forks 3
// children (one keeps B, one moves A elsewhere, one unmaps part of A), the
// parent unmaps A's tail; after restore every process checks every word and
// that the memory is still shared.
#include <csignal>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "stored_once_tree.h"

namespace ckpt::restoretest {
namespace {

class SharedAnonTree : public StoredOnceTreeTest {
 protected:
  img::u64 region() const { return std::stoull(program_->value("region"), nullptr, 16); }
  // `imgtool info --json`'s shared_anon mappings: bytes stored, and bytes
  // taken from an earlier process's core.
  void shared_anon_bytes(img::u64 *stored, img::u64 *once) {
    RunResult info = imgtool_run({"info", "--json", image_path()});
    ASSERT_TRUE(info.exited && info.exit_code == 0) << info.err;
    auto j = nlohmann::json::parse(info.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded());
    *stored = *once = 0;
    for (const auto &m : j["memory"])
      if (m.value("kind", "") == "shared_anon") {
        *stored += m.value("stored_bytes", img::u64(0));
        *once += m.value("stored_once_bytes", img::u64(0));
      }
  }
  // Kills the tree (pids[0] is the root, pid_) after a leave-running
  // dump; the children, orphaned to us (the subreaper), are reaped so that
  // their pids are free for the restore.
  void kill_tree(const std::vector<pid_t> &pids) {
    for (size_t i = 1; i < pids.size(); i++) kill(pids[i], SIGKILL);
    kill(pid_, SIGKILL);
    int status;
    ASSERT_TRUE(program_->wait_exit(&status, 10));
    for (size_t i = 1; i < pids.size(); i++)
      ASSERT_TRUE(wait_until([&] { return waitpid(pids[i], nullptr, WNOHANG) == pids[i] || !pid_exists(pids[i]); }, 30))
          << "child " << pids[i] << " lives on";
  }
};

// A and B are in the file once: 30 MiB of A and B by the parent, A's last
// 2 MiB by child 0 (the parent unmapped them); a copy per process would be
// 34 + 36 + 32 + 24 MiB. Then restored eagerly, lazily, in a new pid
// namespace and from a stream, each process finds every word as it was
// and the memory still shared.
TEST_F(SharedAnonTree, StoredOnceAndRestoredShared) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SHARED_ANON_TREE_PATH));
  ASSERT_EQ(tree_pids().size(), 4u) << program_->value("pids");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  img::u64 stored = 0, once = 0;
  ASSERT_NO_FATAL_FAILURE(shared_anon_bytes(&stored, &once));
  EXPECT_EQ(stored, 36 * kMiB) << "shared anonymous bytes stored";
  // Child 0: A's first 30 MiB and B; child 1: all of A elsewhere; child 2:
  // A from 8 MiB on.
  EXPECT_EQ(once, (30 + 4 + 32 + 24) * kMiB) << "shared anonymous bytes taken from an earlier core";
  struct stat st {};
  ASSERT_EQ(stat(image_path().c_str(), &st), 0);
  // 36 MiB and what each process has besides (libc's data, stacks, notes:
  // a few MiB); a copy per process would pass 126 MiB.
  EXPECT_LT(img::u64(st.st_size), 56 * kMiB) << "the shared memory is stored more than once";
  RunResult text = imgtool_run({"info", image_path()});
  EXPECT_NE(text.out.find("shared memory mapped by several processes, stored once: 90.0 MiB in 3 processes"),
            std::string::npos)
      << text.out;
  expect_ok(imgtool_run({"verify", image_path()}), "verify");
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--lazy"}));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--pidns"}));
  // `imgtool restore -`: the image through a pipe.
  auto passes = [&] {
    std::string l = log();
    size_t n = 0;
    for (size_t at = 0; (at = l.find("PASS\n", at)) != std::string::npos; at++) n++;
    return n;
  };
  size_t before = passes();
  RunResult streamed = test::run({"sh", "-c", "cat \"$1\" | \"$0\" restore -", imgtool(), image_path()}, 120);
  EXPECT_TRUE(streamed.exited && streamed.exit_code == 0) << streamed.status() << "\n" << streamed.err << log();
  EXPECT_EQ(passes(), before + 1) << log();
}

// Snapshot mode (a running tree: the default): shared memory is read
// while the tree is frozen, once, from the process storing it; the tree
// then runs on, and the image, restored once it is gone, is as of the
// freeze.
TEST_F(SharedAnonTree, SnapshotOfTheRunningTree) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SHARED_ANON_TREE_PATH));
  std::vector<pid_t> pids = tree_pids();
  ASSERT_EQ(pids.size(), 4u);
  ASSERT_NO_FATAL_FAILURE(capture_tree_before());
  RunResult d = dump(pid_, image_path(), {"--stats", "--short-freeze"});
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  EXPECT_NE(d.err.find(", freeze snapshot"), std::string::npos) << d.err;
  EXPECT_NE(d.err.find("shared memory stored once 94371840 bytes"), std::string::npos) << d.err;
  ASSERT_NO_FATAL_FAILURE(kill_tree(pids));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// The number after `key` in a --stats line (0 when absent).
img::u64 stat_after(const std::string &err, const std::string &key) {
  size_t at = err.find(key);
  return at == std::string::npos ? 0 : std::strtoull(err.c_str() + at + key.size(), nullptr, 10);
}

// An increment of the running tree in snapshot mode: its pages are planned
// and chosen from the copies after the release (DECISIONS 229), but the
// shared memory, which the copies share with the running tree, is compared
// with the parent from the bytes read while frozen. Unchanged, all of it
// comes from the parent (none stored again); restored from the increment,
// every process finds every word and the memory still shared.
TEST_F(SharedAnonTree, SnapshotIncrementComparesSharedMemoryAsOfTheFreeze) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SHARED_ANON_TREE_PATH));
  std::vector<pid_t> pids = tree_pids();
  ASSERT_EQ(pids.size(), 4u);
  std::string link0 = tmp_.file("link0.core");
  RunResult d = dump(pid_, link0, {"--stats", "--short-freeze"});
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  ASSERT_NO_FATAL_FAILURE(capture_tree_before());
  d = dump(pid_, image_path(), {"--stats", "--short-freeze", "--parent", link0});
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  EXPECT_NE(d.err.find(", freeze snapshot"), std::string::npos) << d.err;
  // The 36 MiB of A and B, and each child's view of them, compared equal.
  EXPECT_GE(stat_after(d.err, ", compared "), 36 * kMiB) << d.err;
  EXPECT_GE(stat_after(d.err, ", parent "), 36 * kMiB) << d.err;
  img::u64 stored = 0, once = 0;
  ASSERT_NO_FATAL_FAILURE(shared_anon_bytes(&stored, &once));
  EXPECT_EQ(stored, 0u) << "shared anonymous bytes stored again although unchanged";
  ASSERT_NO_FATAL_FAILURE(kill_tree(pids));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// Which core stores which part of A: the parent its 30 MiB, child 0 the
// last 2 MiB; child 1's moved A refers to both, at their addresses.
TEST_F(SharedAnonTree, LaterProcessesReferToTheFirstMapping) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SHARED_ANON_TREE_PATH));
  std::vector<pid_t> pids = tree_pids();
  ASSERT_EQ(pids.size(), 4u);
  img::u64 a = region();
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::map<pid_t, std::vector<img::CowPagesRecord>> refs;
  ASSERT_NO_FATAL_FAILURE(with_decoded(image_path(), [&](const img::ImageReader &image, const img::CkptView &view) {
    // Tree records in fork order: child 0's core comes before child 1's.
    ASSERT_EQ(view.tree.records.size(), 3u);
    ASSERT_EQ(view.tree.records[0].pid, pids[1]);
    ASSERT_EQ(view.tree.records[1].pid, pids[2]);
    ASSERT_NO_FATAL_FAILURE(cow_pages_by_pid(image, view, &refs));
  }));
  // Child 1 (moved): 30 MiB from the parent at A, then 2 MiB from child 0
  // at A + 30 MiB, both at other addresses than its own.
  img::u64 from_parent = 0, from_child0 = 0;
  for (const img::CowPagesRecord &c : refs[pids[2]]) {
    if (c.source_pid == pids[0] && c.source_addr >= a && c.source_addr < a + 30 * kMiB) {
      from_parent += c.length;
      EXPECT_NE(c.start, c.source_addr) << "child 1 moved A elsewhere";
    }
    if (c.source_pid == pids[1] && c.source_addr >= a + 30 * kMiB && c.source_addr < a + 32 * kMiB)
      from_child0 += c.length;
  }
  EXPECT_EQ(from_parent, 30 * kMiB);
  EXPECT_EQ(from_child0, 2 * kMiB);
  // Child 2 maps A from 8 MiB: its first page is the parent's A + 8 MiB.
  bool at_offset = false;
  for (const img::CowPagesRecord &c : refs[pids[3]])
    if (c.source_pid == pids[0] && c.source_addr == a + 8 * kMiB && c.start == a + 8 * kMiB) at_offset = true;
  EXPECT_TRUE(at_offset) << "child 2's part of A refers to the parent's at the same object offset";
}

// A child's extracted core (and `imgtool gdb --pid`) holds the bytes other
// cores store for it: gdb reads a word of A at child 1's moved address.
TEST_F(SharedAnonTree, ExtractedChildHasTheSharedMemory) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SHARED_ANON_TREE_PATH));
  std::vector<pid_t> pids = tree_pids();
  ASSERT_EQ(pids.size(), 4u);
  std::string value = program_->value("moved_word_value");
  std::string addr = program_->value("moved_word_addr");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(
      expect_extracted_core_reads(RESTORE_SHARED_ANON_TREE_PATH, pids[2], pids[2], addr, value));
}

// A damaged page of A, stored by the parent and referred to by every
// child, is found by verify, and the restore does not succeed.
TEST_F(SharedAnonTree, VerifyFindsADamagedSharedPage) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SHARED_ANON_TREE_PATH));
  img::u64 addr = region() + 12 * kMiB;  // mapped by all four, in no window
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  img::u64 offset = 0;
  ASSERT_NO_FATAL_FAILURE(with_decoded(image_path(), [&](const img::ImageReader &image, const img::CkptView &view) {
    offset = root_stored_offset(image, view, addr);
    ASSERT_NE(offset, 0u) << "the root stores the page";
  }));
  ASSERT_NO_FATAL_FAILURE(expect_damage_found(offset));
}

// The whole state of all four processes, before the dump and after a
// --detach restore (StoredOnceTreeTest::expect_every_process_as_before).
TEST_F(SharedAnonTree, EveryProcessStateComparesEqual) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SHARED_ANON_TREE_PATH));
  ASSERT_NO_FATAL_FAILURE(expect_every_process_as_before());
}

}  // namespace
}  // namespace ckpt::restoretest
