// The fixture of the "stored once" tree tests (issue 9, FORMAT.md §9.23):
// a tree program whose root prints "pids P0 P1 ..." and reports on its
// stderr, and the checks those tests share: a child's extracted core holds
// the bytes another core stores for it, a damaged shared page is found,
// every process's state compares equal after a --detach restore.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

#include "restore_common.h"

namespace ckpt::restoretest {

class StoredOnceTreeTest : public RestoreTest {
 protected:
  static constexpr img::u64 kMiB = 1 << 20;

  // Every restore_expect() but --pidns ones compares each live process's
  // whole state with its state before the dump (restore_common.h).
  StoredOnceTreeTest() { compare_tree_ = true; }
  void SetUp() override {
    RestoreTest::SetUp();
    pass_file_ = log_path();  // the root reports on its stderr
  }
  RunResult imgtool_run(const std::vector<std::string> &args) { return RestoreTest::imgtool_run(args, 120); }
  void expect_ok(const RunResult &r, const std::string &what) {
    EXPECT_TRUE(r.exited && r.exit_code == 0) << what << ": " << r.status() << "\n" << r.err;
  }

  // Process `extract_pid`'s extracted core is standalone (no page refers to
  // another core) and gdb reads `value` at `addr` in it; so does `imgtool
  // gdb --pid gdb_pid` on the image. ASSERT_NO_FATAL_FAILURE.
  void expect_extracted_core_reads(const char *program, pid_t extract_pid, pid_t gdb_pid, const std::string &addr,
                                   const std::string &value) {
    std::string core = tmp_.file("child.core");
    expect_ok(imgtool_run({"extract", image_path(), "--pid", std::to_string(extract_pid), "-o", core}), "extract");
    expect_ok(imgtool_run({"verify", "--intact", core}), "verify --intact of the extracted core");
    ASSERT_NO_FATAL_FAILURE(with_decoded(core, [](const img::ImageReader &, const img::CkptView &view) {
      EXPECT_TRUE(view.cow_pages.records.empty());
      for (const img::PageRangeRecord &r : view.ranges.records)
        EXPECT_NE(r.source, static_cast<img::u32>(img::PageSource::Earlier)) << std::hex << r.start;
    }));
    std::string x = "print/x *(unsigned long *)" + addr;
    RunResult g = test::run({"gdb", "-batch", "-nx", "-ex", x, program, core}, 120);
    EXPECT_NE(g.out.find(value), std::string::npos) << x << " wants " << value << "\n" << g.out << g.err;
    RunResult p = imgtool_run({"gdb", image_path(), "--pid", std::to_string(gdb_pid), "--", "-batch", "-nx", "-ex", x});
    EXPECT_NE(p.out.find(value), std::string::npos) << x << " wants " << value << "\n" << p.out << p.err;
  }

  // Opens and decodes `path` (asserted) and hands both to `use`. Call
  // through ASSERT_NO_FATAL_FAILURE.
  static void with_decoded(const std::string &path,
                           const std::function<void(const img::ImageReader &, const img::CkptView &)> &use) {
    auto image = img::ImageReader::open(path);
    ASSERT_TRUE(image) << image.error().message();
    auto view = img::decode_ckpt(*image);
    ASSERT_TRUE(view) << view.error().message();
    use(*image, *view);
  }
  // Each embedded core's CowPages records, by the pid of its Tree record.
  static void cow_pages_by_pid(const img::ImageReader &image, const img::CkptView &view,
                               std::map<pid_t, std::vector<img::CowPagesRecord>> *out) {
    for (const img::TreeRecord &t : view.tree.records) {
      auto core = image.embedded(t);
      ASSERT_TRUE(core) << core.error().message();
      auto cv = img::decode_ckpt(*core);
      ASSERT_TRUE(cv) << cv.error().message();
      (*out)[t.pid] = cv->cow_pages.records;
    }
  }

  // The file offset of the root core's stored copy of the page at `addr`
  // (0 when the root does not store it).
  static img::u64 root_stored_offset(const img::ImageReader &image, const img::CkptView &view, img::u64 addr) {
    for (const img::PageRangeRecord &r : view.ranges.records)
      if (r.start <= addr && addr < r.start + r.length && r.source == static_cast<img::u32>(img::PageSource::Image))
        return img::stored_range(image, r).file_offset + (addr - r.start);
    return 0;
  }

  // One byte at `offset` flipped: verify says which checksum in one line,
  // and the restore does not succeed (refused, or the damaged word found by
  // the root's own check).
  void expect_damage_found(img::u64 offset) {
    std::string bytes = read_file(image_path());
    ASSERT_GT(bytes.size(), offset);
    bytes[offset] ^= 0x5a;
    ASSERT_TRUE(write_file(image_path(), bytes));
    RunResult v = imgtool_run({"verify", image_path()});
    EXPECT_NE(v.exit_code, 0) << "verify accepted a damaged shared page";
    EXPECT_EQ(v.err_lines().size(), 1u) << v.err;
    EXPECT_NE(v.err.find("checksum"), std::string::npos) << v.err;
    ASSERT_NO_FATAL_FAILURE(go());
    RunResult r = restore(image_path());
    EXPECT_FALSE(r.exited && r.exit_code == 0) << "restored from a damaged image";
  }

  // Every process of the started tree, idle before the dump and again after
  // a --detach restore, compares equal field by field, save the known
  // differences; then the tree runs its own checks to the end.
  void expect_every_process_as_before() {
    std::vector<pid_t> pids = tree_pids();
    ASSERT_EQ(pids.size(), 4u);
    ASSERT_NO_FATAL_FAILURE(detach_restore_and_compare(pids));
    ASSERT_NO_FATAL_FAILURE(go());
    int st = 0;
    ASSERT_TRUE(test::wait_child_exit(pid_, &st, 60)) << log();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st << "\n" << log();
  }
};

}  // namespace ckpt::restoretest
