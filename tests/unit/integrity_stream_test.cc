// verify_integrity over an image larger than its streaming chunks: one pass
// finds damage in every part of the file (a segment's middle, a segment
// that ends in another chunk, the padding only the whole-file checksum
// covers), and the checker's resident set stays bounded instead of
// growing with the image (the file mapping's passed pages are dropped).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <vector>

#include <xxhash.h>

#include <ckpt/img/reader.h>
#include <ckpt/img/table.h>
#include <ckpt/img/writer.h>

#include "file_size.h"
#include "hash_outside.h"
#include "synthetic.h"

namespace {

using namespace ckpt::img;

constexpr u64 kBig = 192ull << 20;  // six of the checker's 32 MiB chunks

// kB of file pages this process has mapped (RssFile in /proc/self/status).
long rss_file_kb() {
  FILE *f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "RssFile: %ld kB", &kb) == 1) break;
  std::fclose(f);
  return kb;
}

class IntegrityStream : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/var/tmp/ckpt-integrity-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/big.img";
    // The synthetic image's notes and small segments, plus one big segment
    // of non-zero bytes that spans several chunks and starts mid-chunk.
    auto im = ckpt::test::make_synthetic();
    SegmentPlan big{0x7f0000000000ull, kBig, kBig, PF_R | PF_W};
    im.segments.push_back(big);
    auto w = ImageWriter::create(im.notes.encode(), im.segments);
    ASSERT_TRUE(w) << w.error().message();
    int fd = open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(w->begin(fd));
    for (const auto &d : im.segment_data) ASSERT_TRUE(w->write(d));
    std::vector<u8> block(1 << 20);
    for (u64 done = 0; done < kBig; done += block.size()) {
      for (size_t i = 0; i < block.size(); i += 64) block[i] = static_cast<u8>((done + i) / 4096 + 1);
      ASSERT_TRUE(w->write(block));
    }
    ASSERT_TRUE(w->finish());
    const ImageLayout &l = w->layout();
    big_offset_ = l.segment_offsets.back();
    padding_at_ = l.notes_offset + l.notes_size;
    padding_end_ = l.zero_block_offset ? l.zero_block_offset : l.segment_offsets.front();
    close(fd);
  }
  void TearDown() override {
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }
  void flip(u64 offset) { ASSERT_TRUE(ckpt::test::flip_byte(path_, static_cast<long long>(offset))); }
  std::string check() {
    auto image = ImageReader::open(path_);
    if (!image) return "open: " + image.error().message();
    Status s = verify_integrity(*image);
    return s ? "" : s.error().message();
  }
  std::vector<u8> contents() {
    std::vector<u8> bytes;
    FILE *f = std::fopen(path_.c_str(), "rb");
    if (!f) return bytes;
    std::fseek(f, 0, SEEK_END);
    bytes.resize(std::ftell(f));
    std::fseek(f, 0, SEEK_SET);
    if (std::fread(bytes.data(), 1, bytes.size(), f) != bytes.size()) bytes.clear();
    std::fclose(f);
    return bytes;
  }
  // The file's integrity records and where the note's descriptor starts.
  std::vector<IntegrityRecord> records(u64 *note_offset, u64 *records_at) {
    auto image = ImageReader::open(path_);
    if (!image) return {};
    const NoteRef *note = image->find_ckpt(CkptNote::Integrity);
    if (!note) return {};
    auto table = decode_table<IntegrityRecord>(note->desc);
    if (!table) return {};
    *note_offset = note->offset;
    *records_at = (note->desc.data() - image->bytes().data()) + sizeof(TableHeader);
    return table->records;
  }
  // XXH3 of [0, end) less the Segment records' ranges.
  static u64 hash_outside_segments(const std::vector<u8> &bytes, const std::vector<IntegrityRecord> &recs, u64 end) {
    std::vector<std::pair<u64, u64>> segs;
    for (const IntegrityRecord &r : recs)
      if (r.kind == static_cast<u32>(IntegrityKind::Segment)) segs.push_back({r.offset, r.offset + r.size});
    return ckpt::test::xxh3_outside(bytes, 0, end, segs);
  }
  std::string dir_, path_;
  u64 big_offset_ = 0, padding_at_ = 0, padding_end_ = 0;
};

TEST_F(IntegrityStream, IntactImagePasses) { EXPECT_EQ(check(), ""); }

TEST_F(IntegrityStream, DamageInTheMiddleOfALongSegmentIsNamed) {
  flip(big_offset_ + kBig / 2 + 12345);
  std::string e = check();
  EXPECT_NE(e.find("checksum mismatch in segment"), std::string::npos) << e;
  EXPECT_NE(e.find(std::to_string(big_offset_) + ".." + std::to_string(big_offset_ + kBig)), std::string::npos) << e;
}

TEST_F(IntegrityStream, DamageInTheLastByteOfALongSegmentIsNamed) {
  flip(big_offset_ + kBig - 1);
  std::string e = check();
  EXPECT_NE(e.find("checksum mismatch in segment"), std::string::npos) << e;
}

TEST_F(IntegrityStream, DamageInPaddingIsFoundByTheWholeFileChecksum) {
  // Between the notes and the page-aligned data: covered by the
  // whole-file checksum alone, which the second thread computes.
  ASSERT_LT(padding_at_, padding_end_);
  flip(padding_at_);
  std::string e = check();
  EXPECT_NE(e.find("checksum mismatch in padding"), std::string::npos) << e;
}

// Format minor 7 (decision 199): the writer hashes each stored byte once.
// The Prefix says so (index kPrefixOutsideCovered) and its checksum is that
// of the bytes no Segment record covers; before, it hashed the segments'
// bytes a second time.
TEST_F(IntegrityStream, PrefixHashesOnlyTheBytesNoSegmentCovers) {
  u64 note_offset = 0, records_at = 0;
  auto recs = records(&note_offset, &records_at);
  ASSERT_GE(recs.size(), 2u);
  const IntegrityRecord &prefix = recs[recs.size() - 2];
  ASSERT_EQ(prefix.kind, static_cast<u32>(IntegrityKind::Prefix));
  EXPECT_EQ(prefix.index, 1u);  // kPrefixOutsideCovered (libimg/src/prefix_rule.h)
  EXPECT_EQ(prefix.size, note_offset);
  EXPECT_EQ(prefix.xxh3, hash_outside_segments(contents(), recs, note_offset));
}

// An image written before minor 7 (Prefix index 0, hashing every byte
// before the integrity note) still verifies, and damage in it is found.
TEST_F(IntegrityStream, AWholeFilePrefixOfAnOlderImageIsStillChecked) {
  u64 note_offset = 0, records_at = 0;
  auto recs = records(&note_offset, &records_at);
  ASSERT_GE(recs.size(), 2u);
  std::vector<u8> bytes = contents();
  size_t p = recs.size() - 2, self = recs.size() - 1;
  IntegrityRecord old = recs[p];
  old.index = 0;
  old.xxh3 = XXH3_64bits(bytes.data(), note_offset);
  std::memcpy(bytes.data() + records_at + p * sizeof(IntegrityRecord), &old, sizeof old);
  IntegrityRecord self_rec = recs[self];
  self_rec.xxh3 = XXH3_64bits(bytes.data() + note_offset, self_rec.size);
  std::memcpy(bytes.data() + records_at + self * sizeof(IntegrityRecord), &self_rec, sizeof self_rec);
  int fd = open(path_.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, bytes.data() + note_offset, bytes.size() - note_offset, note_offset),
            static_cast<ssize_t>(bytes.size() - note_offset));
  close(fd);
  EXPECT_EQ(check(), "");
  flip(padding_at_);
  std::string e = check();
  EXPECT_NE(e.find("checksum mismatch in padding"), std::string::npos) << e;
}

TEST_F(IntegrityStream, ResidentSetStaysBoundedWhileTheMappingIsOpen) {
  auto image = ImageReader::open(path_);
  ASSERT_TRUE(image) << image.error().message();
  long before = rss_file_kb();
  ASSERT_GE(before, 0);
  ASSERT_TRUE(verify_integrity(*image));
  long grown_mib = (rss_file_kb() - before) / 1024;
  // A pass that kept every page mapped would have grown by the whole
  // image (about 192 MiB); the streamed one keeps a chunk or two.
  EXPECT_LT(grown_mib, 80) << "the checker kept " << grown_mib << " MiB of the image mapped";
}

}  // namespace
