// verify_integrity over an image larger than its streaming chunks: one pass
// finds damage in every part of the file (a segment's middle, a segment
// that ends in another chunk, the padding only the whole-file checksum
// covers), and the checker's resident set stays bounded instead of
// growing with the image (the file mapping's passed pages are dropped).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <unistd.h>

#include <ckpt/img/reader.h>
#include <ckpt/img/writer.h>

#include "file_size.h"
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
