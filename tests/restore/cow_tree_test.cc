// Memory a forked tree still shares copy-on-write is stored once (issue 9,
// FORMAT.md §9.23): tests/programs/restore_cow_tree.c fills 32 MiB, forks 3
// children that each rewrite 1 MiB, and after restore every process checks
// every word.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

#include "known_state_differences.h"
#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

constexpr img::u64 kMiB = 1 << 20;

class CowTree : public RestoreTest {
 protected:
  void SetUp() override {
    RestoreTest::SetUp();
    pass_file_ = log_path();  // the root reports on its stderr
  }
  std::vector<pid_t> tree_pids() const {
    std::vector<pid_t> out;
    std::istringstream in(program_->value("pids"));
    for (pid_t p; in >> p;) out.push_back(p);
    return out;
  }
  img::u64 word_addr() const { return std::stoull(program_->value("word_addr"), nullptr, 16); }
  RunResult imgtool_run(const std::vector<std::string> &args) { return RestoreTest::imgtool_run(args, 120); }
  void expect_ok(const RunResult &r, const std::string &what) {
    EXPECT_TRUE(r.exited && r.exit_code == 0) << what << ": " << r.status() << "\n" << r.err;
  }
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
  std::string core = tmp_.file("child.core");
  expect_ok(imgtool_run({"extract", image_path(), "--pid", std::to_string(pids[2]), "-o", core}), "extract");
  expect_ok(imgtool_run({"verify", "--intact", core}), "verify --intact of the extracted core");
  // Standalone: no page of it refers to another core.
  auto image = img::ImageReader::open(core);
  ASSERT_TRUE(image) << image.error().message();
  auto view = img::decode_ckpt(*image);
  ASSERT_TRUE(view) << view.error().message();
  EXPECT_TRUE(view->cow_pages.records.empty());
  for (const img::PageRangeRecord &r : view->ranges.records)
    EXPECT_NE(r.source, static_cast<img::u32>(img::PageSource::Earlier)) << std::hex << r.start;
  std::string x = "print/x *(unsigned long *)" + addr;
  RunResult g = test::run({"gdb", "-batch", "-nx", "-ex", x, RESTORE_COW_TREE_PATH, core}, 120);
  EXPECT_NE(g.out.find(value), std::string::npos) << x << " wants " << value << "\n" << g.out << g.err;
  RunResult p = imgtool_run({"gdb", image_path(), "--pid", std::to_string(pids[3]), "--", "-batch", "-nx", "-ex", x});
  EXPECT_NE(p.out.find(value), std::string::npos) << x << " wants " << value << "\n" << p.out << p.err;
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
  {
    auto image = img::ImageReader::open(image_path());
    ASSERT_TRUE(image) << image.error().message();
    auto view = img::decode_ckpt(*image);
    ASSERT_TRUE(view) << view.error().message();
    for (const img::PageRangeRecord &r : view->ranges.records)
      if (r.start <= addr && addr < r.start + r.length && r.source == static_cast<img::u32>(img::PageSource::Image))
        offset = img::stored_range(*image, r).file_offset + (addr - r.start);
    ASSERT_NE(offset, 0u) << "the root stores the word";
    // Each child takes that very page from the root's core.
    int referring = 0;
    for (const img::TreeRecord &t : view->tree.records) {
      auto core = image->embedded(t);
      ASSERT_TRUE(core) << core.error().message();
      auto cv = img::decode_ckpt(*core);
      ASSERT_TRUE(cv) << cv.error().message();
      for (const img::CowPagesRecord &c : cv->cow_pages.records)
        if (c.start <= addr && addr < c.start + c.length) {
          EXPECT_EQ(c.source_pid, pids[0]);
          EXPECT_EQ(c.file_offset + (addr - c.start), offset);
          referring++;
        }
    }
    EXPECT_EQ(referring, 3);
  }
  std::string bytes = read_file(image_path());
  ASSERT_GT(bytes.size(), offset);
  bytes[offset] ^= 0x5a;
  ASSERT_TRUE(write_file(image_path(), bytes));
  RunResult v = imgtool_run({"verify", image_path()});
  EXPECT_NE(v.exit_code, 0) << "verify accepted a damaged shared page";
  EXPECT_EQ(v.err_lines().size(), 1u) << v.err;
  EXPECT_NE(v.err.find("checksum"), std::string::npos) << v.err;
  // Whether restore refuses it or the damaged word is found by the root's
  // own check, the restore must not succeed.
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restore(image_path());
  EXPECT_FALSE(r.exited && r.exit_code == 0) << "restored from a damaged image";
}

// Every process, idle before the dump and again after a --detach restore,
// compares equal field by field, save the known differences.
TEST_F(CowTree, EveryProcessStateComparesEqual) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COW_TREE_PATH));
  std::vector<pid_t> pids = tree_pids();
  ASSERT_EQ(pids.size(), 4u);
  std::map<pid_t, test::ProcessState> before;
  ASSERT_NO_FATAL_FAILURE(capture_processes_before(pids, &before));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::string pidfile = tmp_.file("restored.pid");
  RunResult r = restore(image_path(), {"--detach", "--pidfile", pidfile});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  expect_processes_as_before(before, pids);
  ASSERT_NO_FATAL_FAILURE(go());
  int st = 0;
  ASSERT_TRUE(test::wait_child_exit(pid_, &st, 60)) << log();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st << "\n" << log();
}

}  // namespace
}  // namespace ckpt::restoretest
