// A damaged byte of stored memory, restored eagerly: the restorer (or the
// restoring child, for a segment the restorer does not read whole) finds
// it while reading the image in (decision 174), and the restore fails with
// the very line `imgtool verify` gives for the same file, leaving no
// process behind and nothing run. Every data segment of the image is
// damaged in turn, so both the segments checked as they are read and
// those checked before the jump are covered; a tree (a byte in the root's
// core and one in an embedded core) and --pidns take the same way.
#include <gtest/gtest.h>

#include <elf.h>
#include <fcntl.h>
#include <set>
#include <sstream>
#include <unistd.h>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

#include "file_size.h"
#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

// A stored segment of one core: where its bytes are in the whole file.
struct DataSegment {
  img::u64 offset = 0, size = 0;
  pid_t pid = 0;  ///< whose core
};

// Every PT_LOAD with bytes of its own (not the shared zero block) of the
// image's root and, for a tree, of each embedded core.
std::vector<DataSegment> data_segments(const std::string &path) {
  std::vector<DataSegment> out;
  auto image = img::ImageReader::open(path);
  if (!image) return out;
  auto view = img::decode_ckpt(*image);
  if (!view) return out;
  auto add = [&](const img::ImageReader &core, pid_t pid) {
    std::multiset<img::u64> offsets;
    for (const Elf64_Phdr &ph : core.phdrs())
      if (ph.p_type == PT_LOAD && ph.p_filesz) offsets.insert(ph.p_offset);
    for (const Elf64_Phdr &ph : core.phdrs())
      if (ph.p_type == PT_LOAD && ph.p_filesz && offsets.count(ph.p_offset) == 1)
        out.push_back({core.base_offset() + ph.p_offset, ph.p_filesz, pid});
  };
  add(*image, view->tasks.records[0].pid);
  for (const img::TreeRecord &t : view->tree.records) {
    if (t.flags & img::kTreeZombie) continue;
    auto core = image->embedded(t);
    if (core) add(*core, t.pid);
  }
  return out;
}

class DamagedMemory : public ReportingRestoreTest {
 protected:
  RunResult imgtool_run(const std::vector<std::string> &args) { return RestoreTest::imgtool_run(args, 120); }
  // The byte in the middle of `s` flipped: verify names it in one line,
  // and restore (with `extra`) fails with that very line, nothing left of
  // `pids` and nothing run; then the byte is put back.
  void expect_refused_as_verify_says(const DataSegment &s, const std::vector<std::string> &extra,
                                     const std::vector<pid_t> &pids) {
    SCOPED_TRACE("segment at " + std::to_string(s.offset) + " (" + std::to_string(s.size) + " bytes) of process " +
                 std::to_string(s.pid));
    img::u64 at = s.offset + s.size / 2;
    std::string ran_before = read_file(pass_file_);
    ASSERT_TRUE(test::flip_byte(image_path(), static_cast<long long>(at)));
    RunResult v = imgtool_run({"verify", image_path()});
    ASSERT_EQ(v.err_lines().size(), 1u) << v.err;
    const std::string verify_prefix = "imgtool verify: ";
    ASSERT_EQ(v.err_lines()[0].rfind(verify_prefix, 0), 0u) << v.err;
    std::string line = v.err_lines()[0].substr(verify_prefix.size());
    EXPECT_NE(line.find("checksum mismatch"), std::string::npos) << line;
    RunResult r = restore(image_path(), extra);
    expect_one_line_failure(r, "");
    if (!r.err_lines().empty()) {
      EXPECT_EQ(r.err_lines()[0], "imgtool restore: " + line);
    }
    for (pid_t p : pids) EXPECT_FALSE(pid_exists(p)) << "pid " << p << " exists after a refused restore";
    EXPECT_EQ(read_file(pass_file_), ran_before) << "the damaged image ran";
    ASSERT_TRUE(test::flip_byte(image_path(), static_cast<long long>(at)));
  }
};

// Every data segment of a process with shared memory (filled by imgtool,
// checked before the jump) and private memory (checked by the restorer).
TEST_F(DamagedMemory, EverySegmentIsRefusedWithVerifysLine) {
  pass_file_ = log_path();
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SHMEM_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  std::vector<DataSegment> segments = data_segments(image_path());
  ASSERT_GE(segments.size(), 3u);
  for (const DataSegment &s : segments) {
    ASSERT_NO_FATAL_FAILURE(expect_refused_as_verify_says(s, {}, {pid_}));
    if (HasFailure()) break;
  }
  // --detach and --pidns refuse it alike (the largest segment).
  const DataSegment *largest = &segments[0];
  for (const DataSegment &s : segments)
    if (s.size > largest->size) largest = &s;
  ASSERT_NO_FATAL_FAILURE(
      expect_refused_as_verify_says(*largest, {"--detach", "--pidfile", tmp_.file("restored.pid")}, {pid_}));
  EXPECT_NE(access(tmp_.file("restored.pid").c_str(), F_OK), 0) << "a refused restore left a pid file";
  ASSERT_NO_FATAL_FAILURE(expect_refused_as_verify_says(*largest, {"--pidns"}, {pid_}));
  // Intact again: it restores.
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// A tree: a damaged byte in the root's core and in an embedded core, with
// and without --pidns; no process of the tree is left.
TEST_F(DamagedMemory, TreeIsRefusedWithVerifysLine) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_PATH));
  std::vector<pid_t> pids = tree_pids();
  ASSERT_EQ(pids.size(), 8u) << program_->value("pids");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  std::vector<DataSegment> segments = data_segments(image_path());
  const DataSegment *in_root = nullptr, *embedded = nullptr;
  for (const DataSegment &s : segments) {
    const DataSegment *&slot = s.pid == pids[0] ? in_root : embedded;
    if (!slot || s.size > slot->size) slot = &s;
  }
  ASSERT_TRUE(in_root && embedded);
  for (const DataSegment *s : {in_root, embedded})
    for (const std::vector<std::string> &extra : {std::vector<std::string>{}, std::vector<std::string>{"--pidns"}})
      ASSERT_NO_FATAL_FAILURE(expect_refused_as_verify_says(*s, extra, pids));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_EQ(read_file(pass_file_), "PASS\n");
}

}  // namespace
}  // namespace ckpt::restoretest
