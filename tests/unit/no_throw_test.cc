// Nothing in the libraries throws across their boundary: misuse and bad
// input give errors as values (or, for a bug in the caller, one line and
// an abort), never std::out_of_range or std::bad_variant_access.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include <ckpt/img/expected.h>
#include <ckpt/img/reader.h>

#include "synthetic.h"

namespace {

using namespace ckpt::img;

TEST(NoThrow, ErrorOfASuccessSaysNoError) {
  Expected<int> ok(7);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok.error().message(), "no error");
  Status fine;
  EXPECT_EQ(fine.error().message(), "");
}

TEST(NoThrow, ValueOfAnErrorIsOneLineAndAnAbortNotAnException) {
  Expected<std::string> bad(make_error("the reason"));
  ASSERT_FALSE(bad);
  EXPECT_DEATH((void)bad->size(), "internal error: a result was used without checking it: the reason");
  EXPECT_DEATH((void)*bad, "the reason");
  EXPECT_DEATH((void)bad.take(), "the reason");
}

class ReaderNoThrow : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<uint8_t> bytes = ckpt::test::encode_image(ckpt::test::make_synthetic());
    fd_ = memfd_create("no_throw", MFD_CLOEXEC);
    ASSERT_GE(fd_, 0);
    ASSERT_EQ(write(fd_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void TearDown() override { close(fd_); }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }
  int fd_ = -1;
};

// segment_bytes used .at(): std::out_of_range for an index from a caller.
TEST_F(ReaderNoThrow, SegmentBytesOutOfRangeIsEmpty) {
  auto r = ImageReader::open(path());
  ASSERT_TRUE(r) << r.error().message();
  size_t n = r->phdrs().size();
  ASSERT_GT(n, 1u);
  EXPECT_FALSE(r->segment_bytes(1).empty() && r->phdrs()[1].p_filesz != 0);
  EXPECT_TRUE(r->segment_bytes(n).empty());
  EXPECT_TRUE(r->segment_bytes(SIZE_MAX).empty());
}

}  // namespace
