// Tree images in libimg (FORMAT.md §12.1): the multi-part writer, the
// zero-copy view of an embedded core, and the checks that bound the Tree.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <unistd.h>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>
#include <ckpt/img/table.h>

#include "synthetic.h"

namespace {

using namespace ckpt::img;
using ckpt::test::encode_tree_image;
using ckpt::test::make_synthetic_tree;

class TreeImage : public ::testing::Test {
 protected:
  void SetUp() override {
    bytes_ = encode_tree_image(make_synthetic_tree());
    ASSERT_FALSE(bytes_.empty());
  }
  // Offset in bytes_ of Tree record i's field at `field`.
  size_t tree_field(size_t i, size_t field) {
    auto r = ImageReader::from_bytes(bytes_);
    EXPECT_TRUE(r);
    const NoteRef *n = r->find_ckpt(CkptNote::Tree);
    EXPECT_NE(n, nullptr);
    size_t desc = n->desc.data() - r->bytes().data();
    return desc + sizeof(TableHeader) + i * sizeof(TreeRecord) + field;
  }
  template <typename T>
  std::vector<u8> with_field(size_t i, size_t field, T value) {
    std::vector<u8> b = bytes_;
    std::memcpy(b.data() + tree_field(i, field), &value, sizeof value);
    return b;
  }
  std::vector<u8> bytes_;
};

TEST_F(TreeImage, EveryEmbeddedCoreIsACheckedImageOfItsProcess) {
  auto r = ImageReader::from_bytes(bytes_);
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(verify_integrity(*r)) << verify_integrity(*r).error().message();
  auto view = decode_ckpt(*r);
  ASSERT_TRUE(view) << view.error().message();
  EXPECT_EQ(view->identity.process_count, 4u);
  ASSERT_EQ(view->tree.records.size(), 3u);
  u64 prev_end = 0;
  for (const TreeRecord &t : view->tree.records) {
    if (t.flags & kTreeZombie) {
      EXPECT_EQ(t.pid, 5500);
      EXPECT_EQ(t.wait_status, 7 << 8);
      EXPECT_EQ(t.offset, 0u);
      EXPECT_FALSE(r->embedded(t));
      continue;
    }
    EXPECT_EQ(t.offset % kPageSize, 0u);
    EXPECT_GE(t.offset, prev_end);
    prev_end = t.offset + t.size;
    auto core = r->embedded(t);
    ASSERT_TRUE(core) << core.error().message();
    // Zero copy: the view's bytes are the file's.
    EXPECT_EQ(core->bytes().data(), r->bytes().data() + t.offset);
    EXPECT_EQ(core->base_offset(), t.offset);
    auto cv = decode_core(*core);
    ASSERT_TRUE(cv) << cv.error().message();
    ASSERT_EQ(cv->threads.size(), 1u);
    EXPECT_EQ(cv->threads[0].prstatus.pr_pid, t.pid);
    auto ck = decode_ckpt(*core);
    ASSERT_TRUE(ck) << ck.error().message();
    EXPECT_EQ(ck->identity.root_pid, t.pid);
    ASSERT_EQ(ck->tasks.records.size(), 1u);
    EXPECT_EQ(ck->tasks.records[0].ppid, t.ppid);
    EXPECT_TRUE(verify_integrity(*core));
  }
  EXPECT_LE(prev_end, r->phdrs().back().p_offset);
}

// No seeking: the same plan through a pipe gives the same bytes.
TEST_F(TreeImage, StreamedToAPipeEqualsTheFile) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  std::vector<u8> streamed;
  std::thread reader([&] {
    u8 buf[65536];
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0) streamed.insert(streamed.end(), buf, buf + n);
  });
  bool ok = ckpt::test::write_tree_image(make_synthetic_tree(), p[1]);
  close(p[1]);
  reader.join();
  close(p[0]);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(streamed == bytes_) << "streamed " << streamed.size() << " bytes, file " << bytes_.size();
}

TEST_F(TreeImage, DamageInsideAnEmbeddedCoreNamesTheProcess) {
  auto r = ImageReader::from_bytes(bytes_);
  ASSERT_TRUE(r);
  auto view = decode_ckpt(*r);
  ASSERT_TRUE(view);
  const TreeRecord &t = view->tree.records[2];  // pid 6000
  std::vector<u8> b = bytes_;
  b[t.offset + 200] ^= 0x40;  // inside its PT_NOTE 0
  auto damaged = ImageReader::from_bytes(b);
  ASSERT_TRUE(damaged);
  Status s = verify_integrity(*damaged, false);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("process 6000"), std::string::npos) << s.error().message();
}

// Each damaged Tree field is refused by decode_ckpt (what info, verify and
// restore all decode with) with a message naming the record.
TEST_F(TreeImage, DamagedTreeRecordsAreRejected) {
  struct Case {
    const char *name;
    std::vector<u8> bytes;
    const char *error;
  };
  auto r = ImageReader::from_bytes(bytes_);
  ASSERT_TRUE(r);
  auto view = decode_ckpt(*r);
  ASSERT_TRUE(view);
  u64 first = view->tree.records[0].offset;
  u64 integrity = r->phdrs().back().p_offset;
  std::vector<Case> cases = {
      {"unaligned offset", with_field<u64>(0, offsetof(TreeRecord, offset), first + 8), "not page-aligned"},
      {"offset inside the root's data", with_field<u64>(0, offsetof(TreeRecord, offset), 0), "overlaps"},
      {"second core overlapping the first", with_field<u64>(2, offsetof(TreeRecord, offset), first),
       "overlaps"},
      {"size past the integrity note", with_field<u64>(2, offsetof(TreeRecord, size), integrity), "runs past"},
      {"size wrapping", with_field<u64>(2, offsetof(TreeRecord, size), ~u64(0)), "runs past"},
      {"tiny core", with_field<u64>(0, offsetof(TreeRecord, size), 16), "too small"},
      {"zombie with a core", with_field<u64>(1, offsetof(TreeRecord, offset), first), "a zombie has no embedded core"},
      {"repeated pid", with_field<i32>(1, offsetof(TreeRecord, pid), 5000), "not a new positive pid"},
      {"the root's pid", with_field<i32>(1, offsetof(TreeRecord, pid), 4242), "not a new positive pid"},
      {"parent after child", with_field<i32>(0, offsetof(TreeRecord, ppid), 6000), "neither the root"},
      {"comm outside the data", with_field<u32>(1, offsetof(TreeRecord, comm), 0xfffff), "outside"},
  };
  for (const Case &c : cases) {
    auto img = ImageReader::from_bytes(c.bytes);
    ASSERT_TRUE(img) << c.name;
    auto v = decode_ckpt(*img);
    ASSERT_FALSE(v) << c.name << ": accepted";
    EXPECT_NE(v.error().message().find(c.error), std::string::npos) << c.name << ": " << v.error().message();
  }
  // An identity that miscounts the processes.
  std::vector<u8> b = bytes_;
  const NoteRef *id = r->find_ckpt(CkptNote::Identity);
  size_t at = (id->desc.data() - r->bytes().data()) + sizeof(TableHeader) + offsetof(IdentityRecord, process_count);
  u32 three = 3;
  std::memcpy(b.data() + at, &three, 4);
  auto img = ImageReader::from_bytes(b);
  ASSERT_TRUE(img);
  auto v = decode_ckpt(*img);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message().find("3 processes"), std::string::npos) << v.error().message();
}

// A core embedded in a core is not followed (one level only).
TEST_F(TreeImage, AnEmbeddedCoreWithATreeIsRefused) {
  auto tree = make_synthetic_tree();
  tree.parts[0].notes.tree.add(TreeRecord{});
  std::vector<EmbeddedCorePlan> parts;
  for (const auto &p : tree.parts) parts.push_back({p.notes.encode(), p.segments});
  auto w = ImageWriter::create_tree(tree.root.notes.encode(), tree.root.segments, std::move(parts), {});
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find("Tree note of its own"), std::string::npos) << w.error().message();
}

}  // namespace

// The numbers of docs/FORMAT.md Appendix A, "A tree image".
constexpr u64 kAppendixNotesEnd = 9264, kAppendixDataStart = 12288, kAppendixDataEnd = 45056,
              kAppendixCoreSize = 25324, kAppendixSecondCore = 73728, kAppendixIntegrity = 99052,
              kAppendixIntegritySize = 1036;

// docs/FORMAT.md Appendix A "A tree image" is this synthetic tree: every
// number the appendix gives, from the writer's real output (format 1.2:
// program headers at 128 in the root and in each embedded core; 1.6:
// the root's 320-byte TaskRecord).
TEST_F(TreeImage, LayoutIsTheWorkedExampleOfFormatAppendixA) {
  auto r = ImageReader::from_bytes(bytes_);
  ASSERT_TRUE(r) << r.error().message();
  const auto &ph = r->phdrs();
  ASSERT_EQ(ph.size(), 6u);
  EXPECT_EQ(r->ehdr().e_phoff, 128u);
  EXPECT_EQ(ph[0].p_offset, 128u + 6 * 56);
  EXPECT_EQ(ph[0].p_offset + ph[0].p_filesz, kAppendixNotesEnd);
  EXPECT_EQ(ph[1].p_offset, kAppendixDataStart);
  EXPECT_EQ(ph[4].p_offset + ph[4].p_filesz, kAppendixDataEnd);
  auto view = decode_ckpt(*r);
  ASSERT_TRUE(view) << view.error().message();
  ASSERT_EQ(view->tree.records.size(), 3u);
  const TreeRecord &a = view->tree.records[0], &z = view->tree.records[1], &g = view->tree.records[2];
  EXPECT_EQ(a.pid, 5000);
  EXPECT_EQ(z.pid, 5500);
  EXPECT_EQ(g.pid, 6000);
  EXPECT_EQ(a.offset, kAppendixDataEnd);
  EXPECT_EQ(a.size, kAppendixCoreSize);
  EXPECT_EQ(g.offset, kAppendixSecondCore);
  EXPECT_EQ(g.size, kAppendixCoreSize);
  EXPECT_EQ(ph[5].p_offset, kAppendixIntegrity);
  EXPECT_EQ(ph[5].p_filesz, kAppendixIntegritySize);
  EXPECT_EQ(bytes_.size(), kAppendixIntegrity + kAppendixIntegritySize);
  for (const TreeRecord *t : {&a, &g}) {
    auto core = r->embedded(*t);
    ASSERT_TRUE(core) << core.error().message();
    EXPECT_EQ(core->ehdr().e_phoff, 128u) << t->pid;
  }
}
