// Memory a forked tree still shares copy-on-write is stored once (issue 9,
// FORMAT.md §9.23): tests/programs/restore_cow_tree.c fills 32 MiB, forks 3
// children that each rewrite 1 MiB, and after restore every process checks
// every word.
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "stored_once_tree.h"

namespace ckpt::restoretest {
namespace {

class CowTree : public StoredOnceTreeTest {
 protected:
  img::u64 word_addr() const { return std::stoull(program_->value("word_addr"), nullptr, 16); }
};

// The shared 31 MiB are in the file once: with a copy per process the image
// would hold 4 x 32 MiB. Then restored eagerly, lazily and in a new pid
// namespace, each process finds every word as it was.
TEST_F(CowTree, StoredOnceAndRestoredWhole) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COW_TREE_PATH));
  ASSERT_EQ(tree_pids().size(), 4u) << program_->value("pids");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  struct stat st {};
  ASSERT_EQ(stat(image_path().c_str(), &st), 0);
  // 32 MiB, the 3 rewritten windows and what each process has besides
  // (libc's data, stacks, notes: a few MiB); 4 copies would pass 128 MiB.
  EXPECT_LT(img::u64(st.st_size), 56 * kMiB) << "the shared memory is stored more than once";
  EXPECT_GT(img::u64(st.st_size), 32 * kMiB);
  RunResult info = imgtool_run({"info", "--json", image_path()});
  ASSERT_TRUE(info.exited && info.exit_code == 0) << info.err;
  auto j = nlohmann::json::parse(info.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  img::u64 once = 0;
  for (const auto &m : j["memory"]) once += m.value("stored_once_bytes", img::u64(0));
  EXPECT_GE(once, 3 * 31 * kMiB) << "each child refers to the parent's 31 MiB";
  RunResult text = imgtool_run({"info", image_path()});
  EXPECT_NE(text.out.find("stored once"), std::string::npos) << text.out;
  expect_ok(imgtool_run({"verify", image_path()}), "verify");
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--lazy"}));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--pidns"}));
}

// A child's extracted core (and `imgtool gdb --pid`) holds the bytes its
// parent's core stores for it: gdb reads a word of the shared part.
TEST_F(CowTree, ExtractedChildHasTheSharedMemory) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COW_TREE_PATH));
  std::vector<pid_t> pids = tree_pids();
  ASSERT_EQ(pids.size(), 4u);
  std::string value = program_->value("word_value");
  std::string addr = program_->value("word_addr");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(expect_extracted_core_reads(RESTORE_COW_TREE_PATH, pids[2], pids[3], addr, value));
}

// A damaged page of the parent's that the children share is found by
// verify, and restore refuses the image.
TEST_F(CowTree, VerifyFindsADamagedSharedPage) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COW_TREE_PATH));
  std::vector<pid_t> pids = tree_pids();
  ASSERT_EQ(pids.size(), 4u);
  img::u64 addr = word_addr();
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  img::u64 offset = 0;
  ASSERT_NO_FATAL_FAILURE(with_decoded(image_path(), [&](const img::ImageReader &image, const img::CkptView &view) {
    offset = root_stored_offset(image, view, addr);
    ASSERT_NE(offset, 0u) << "the root stores the word";
    // Each child takes that very page from the root's core.
    std::map<pid_t, std::vector<img::CowPagesRecord>> refs;
    ASSERT_NO_FATAL_FAILURE(cow_pages_by_pid(image, view, &refs));
    int referring = 0;
    for (const auto &[pid, records] : refs)
      for (const img::CowPagesRecord &c : records)
        if (c.start <= addr && addr < c.start + c.length) {
          EXPECT_EQ(c.source_pid, pids[0]);
          EXPECT_EQ(c.file_offset + (addr - c.start), offset);
          referring++;
        }
    EXPECT_EQ(referring, 3);
  }));
  ASSERT_NO_FATAL_FAILURE(expect_damage_found(offset));
}

// Every process, idle before the dump and again after a --detach restore,
// compares equal field by field, save the known differences.
TEST_F(CowTree, EveryProcessStateComparesEqual) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COW_TREE_PATH));
  ASSERT_NO_FATAL_FAILURE(expect_every_process_as_before());
}

}  // namespace
}  // namespace ckpt::restoretest
