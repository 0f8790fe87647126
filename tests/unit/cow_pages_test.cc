// Memory stored once across a tree image (CowPages, FORMAT.md §9.23): the
// writer turns a reference by process and address into a file offset, the
// reader finds the bytes there, checks them against the source core, and a
// one-link merge (what `imgtool extract` writes) puts them in place.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <sys/mman.h>
#include <unistd.h>

#include <ckpt/img/chain.h>
#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

#include "synthetic.h"

namespace {

using namespace ckpt::img;
using ckpt::test::encode_tree_image;
using ckpt::test::make_synthetic_tree;
using ckpt::test::SyntheticTree;

constexpr u64 kBase = 0x10000000;  // synthetic images' first mapping, 2 stored pages

// The synthetic tree with process 5000's first two stored pages taken from
// `source_pid` at `source_addr` instead of stored again.
SyntheticTree tree_sharing(i32 source_pid, u64 source_addr) {
  SyntheticTree t = make_synthetic_tree();
  ckpt::test::SyntheticImage &child = t.parts[0];
  PageRangeRecord &r = child.notes.ranges.records[0];
  EXPECT_EQ(r.start, kBase);
  r.source = static_cast<u32>(PageSource::Earlier);
  r.segment = 0;  // CowPages record 0
  child.notes.cow_pages.add({kBase, 0x2000, 0, source_addr, source_pid, 5000});
  child.segments[0].filesz = 0;  // nothing stored here
  child.segment_data[0].clear();
  return t;
}

// A tree image's bytes, its root and process 5000's core, decoded.
struct Opened {
  std::vector<u8> bytes;
  std::optional<ImageReader> root_image, child_image;
  CkptView root_view, child_view;
  const ImageReader &root() const { return *root_image; }
  const ImageReader &child() const { return *child_image; }
};

void open_tree(const SyntheticTree &t, Opened &o) {
  o.bytes = encode_tree_image(t);
  ASSERT_FALSE(o.bytes.empty());
  auto root = ImageReader::from_bytes(o.bytes);
  ASSERT_TRUE(root) << root.error().message();
  o.root_image.emplace(root.take());
  auto rv = decode_ckpt(o.root());
  ASSERT_TRUE(rv) << rv.error().message();
  o.root_view = rv.take();
  auto child = o.root().embedded(o.root_view.tree.records.at(0));
  ASSERT_TRUE(child) << child.error().message();
  o.child_image.emplace(child.take());
  auto cv = decode_ckpt(o.child());
  ASSERT_TRUE(cv) << cv.error().message();
  o.child_view = cv.take();
}

TEST(CowPages, ReferenceBecomesTheSourcesFileOffset) {
  Opened o;
  ASSERT_NO_FATAL_FAILURE(open_tree(tree_sharing(4242, kBase), o));
  ASSERT_EQ(o.child_view.cow_pages.records.size(), 1u);
  const CowPagesRecord &c = o.child_view.cow_pages.records[0];
  const PageRangeRecord &src = o.root_view.ranges.records[0];
  EXPECT_EQ(c.file_offset, stored_range(o.root(), src).file_offset);
  EXPECT_LT(c.file_offset, o.child().base_offset());
  const PageRangeRecord &r = o.child_view.ranges.records[0];
  ASSERT_TRUE(stored_in_file(r));
  StoredRange got = stored_range(o.child(), o.child_view, r);
  EXPECT_EQ(got.file_offset, c.file_offset);
  ASSERT_EQ(got.bytes.size(), 0x2000u);
  EXPECT_EQ(std::memcmp(got.bytes.data(), stored_range(o.root(), src).bytes.data(), 0x2000), 0);
  std::vector<TreeCore> cores{{&o.root(), &o.root_view}, {&o.child(), &o.child_view}};
  Status s = check_cow_sources(cores);
  EXPECT_TRUE(s) << s.error().message();
  // The whole file's checksums cover the bytes the child takes.
  Status v = verify_integrity(o.root());
  EXPECT_TRUE(v) << v.error().message();
}

// Written standalone (a one-link merge), the child's core holds the bytes.
TEST(CowPages, MergedCoreStandsAlone) {
  Opened o;
  ASSERT_NO_FATAL_FAILURE(open_tree(tree_sharing(4242, kBase), o));
  std::vector<u8> want(stored_range(o.root(), o.root_view.ranges.records[0]).bytes.begin(),
                       stored_range(o.root(), o.root_view.ranges.records[0]).bytes.end());
  Chain one;
  one.push_back(std::make_unique<ChainLinkImage>(ChainLinkImage{"child", std::move(*o.child_image), std::move(o.child_view)}));
  int fd = memfd_create("merged", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  Status s = write_merged(one, fd);
  ASSERT_TRUE(s) << s.error().message();
  std::vector<u8> bytes(lseek(fd, 0, SEEK_END));
  ASSERT_EQ(pread(fd, bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
  close(fd);
  auto merged = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(merged) << merged.error().message();
  auto mv = decode_ckpt(*merged);
  ASSERT_TRUE(mv) << mv.error().message();
  EXPECT_TRUE(mv->cow_pages.records.empty());
  const PageRangeRecord &r = mv->ranges.records.at(0);
  EXPECT_EQ(r.source, static_cast<u32>(PageSource::Image));
  auto mem = merged->read_memory(kBase, 0x2000);
  ASSERT_TRUE(mem) << mem.error().message();
  EXPECT_TRUE(*mem == want);
  EXPECT_TRUE(verify_integrity(*merged));
}

// The writer refuses a reference to a process stored later, or to bytes
// its source does not store; nothing is written.
TEST(CowPages, WriterRefusesWhatNoEarlierCoreStores) {
  SyntheticTree later = tree_sharing(6000, kBase);
  EXPECT_TRUE(encode_tree_image(later).empty());
  SyntheticTree unstored = tree_sharing(4242, kBase + 0x2000);  // the root's zero pages
  EXPECT_TRUE(encode_tree_image(unstored).empty());
}

// A reader checks a reference against the file: only earlier bytes, and
// the source core must store them at that offset.
TEST(CowPages, ReaderChecksTheReference) {
  Opened o;
  ASSERT_NO_FATAL_FAILURE(open_tree(tree_sharing(4242, kBase), o));
  // Record 0's file_offset, in the whole file.
  const NoteRef *n = o.child().find_ckpt(CkptNote::CowPages);
  ASSERT_NE(n, nullptr);
  size_t at = (n->desc.data() - o.root().bytes().data()) + sizeof(TableHeader) + offsetof(CowPagesRecord, file_offset);
  auto with_offset = [&](u64 off) {
    std::vector<u8> b = o.bytes;
    std::memcpy(b.data() + at, &off, 8);
    return b;
  };
  auto decode_child = [&](const std::vector<u8> &b) -> Expected<CkptView> {
    auto root = ImageReader::from_bytes(b);
    if (!root) return root.error();
    auto rv = decode_ckpt(*root);
    if (!rv) return rv.error();
    auto child = root->embedded(rv->tree.records.at(0));
    if (!child) return child.error();
    return decode_ckpt(*child);
  };
  // Past the start of the child's own core: refused by decoding.
  auto past = decode_child(with_offset(o.child().base_offset()));
  ASSERT_FALSE(past);
  EXPECT_NE(past.error().message().find("outside the earlier cores"), std::string::npos) << past.error().message();
  // Inside the file before it, but not where the root stores the bytes.
  u64 elsewhere = o.child_view.cow_pages.records[0].file_offset + 0x1000;
  std::vector<u8> b = with_offset(elsewhere);
  auto root = ImageReader::from_bytes(b);
  ASSERT_TRUE(root);
  auto rv = decode_ckpt(*root);
  ASSERT_TRUE(rv);
  auto child = root->embedded(rv->tree.records.at(0));
  ASSERT_TRUE(child);
  auto cv = decode_ckpt(*child);
  ASSERT_TRUE(cv) << cv.error().message();
  std::vector<TreeCore> cores{{&*root, &*rv}, {&*child, &*cv}};
  Status s = check_cow_sources(cores);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("not where that process stores them"), std::string::npos) << s.error().message();
}

// The root has nothing before it; and a source value beyond Earlier is
// unknown (how an older reader sees Earlier itself: refused, never zeros).
TEST(CowPages, RootCannotReferAndUnknownSourcesAreRefused) {
  auto bad_source = [](u32 source) {
    SyntheticTree t = make_synthetic_tree();
    t.root.notes.ranges.records[1].source = source;
    t.root.notes.ranges.records[1].segment = 0;
    t.root.notes.cow_pages.add({kBase + 0x2000, 0x2000, 0, kBase, 4242, 4242});
    return t;
  };
  EXPECT_TRUE(encode_tree_image(bad_source(static_cast<u32>(PageSource::Earlier))).empty())
      << "the writer must refuse a root with copy-on-write pages";
  auto single = ckpt::test::make_synthetic();
  single.notes.ranges.records[1].source = static_cast<u32>(PageSource::Earlier) + 1;
  auto bytes = ckpt::test::encode_image(single);
  ASSERT_FALSE(bytes.empty());
  auto image = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(image);
  auto v = decode_ckpt(*image);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message().find("unknown source"), std::string::npos) << v.error().message();
  single.notes.ranges.records[1].source = static_cast<u32>(PageSource::Earlier);
  single.notes.cow_pages.add({kBase + 0x2000, 0x2000, 0, kBase, 4242, 4242});
  bytes = ckpt::test::encode_image(single);
  ASSERT_FALSE(bytes.empty());
  image = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(image);
  v = decode_ckpt(*image);
  ASSERT_FALSE(v) << "a single image has no earlier core";
  EXPECT_NE(v.error().message().find("outside the earlier cores"), std::string::npos) << v.error().message();
}

}  // namespace
