// Helpers that replaced copies in production code (issue #16): each copy's
// callers now share one implementation, so these pin what they all said.
//  - check_regions (libimg): restore's check of the segments its restorer
//    does not check while reading says exactly what verify says;
//  - nlmsg_ok/nlmsg_next (libimg netlink.h): the netlink walk of the network
//    lock and the writer's sock_diag queries, whole messages only;
//  - describe_restorer_failure (reader verdict.cc): a failed RS_ASSERT of the
//    restorer names its own file, now that the blob has several.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include <ckpt/img/netlink.h>
#include <ckpt/img/reader.h>
#include <ckpt/img/table.h>

#include "synthetic.h"
#include "verdict.h"

namespace {

using namespace ckpt::img;

std::vector<IntegrityRecord> segment_records(const ImageReader &image) {
  const NoteRef *note = image.find_ckpt(CkptNote::Integrity);
  EXPECT_NE(note, nullptr);
  std::vector<IntegrityRecord> out;
  if (!note) return out;
  auto table = decode_table<IntegrityRecord>(note->desc);
  EXPECT_TRUE(table);
  for (const IntegrityRecord &r : table->records)
    if (static_cast<IntegrityKind>(r.kind) == IntegrityKind::Segment) out.push_back(r);
  return out;
}

TEST(CheckRegions, IntactSegmentsPass) {
  auto bytes = ckpt::test::encode_image(ckpt::test::make_synthetic());
  auto image = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(image) << image.error().message();
  auto segments = segment_records(*image);
  ASSERT_FALSE(segments.empty());
  Status s = check_regions(*image, segments);
  EXPECT_TRUE(s) << s.error().message();
}

TEST(CheckRegions, ADamagedSegmentIsNamedAsVerifyNamesIt) {
  auto bytes = ckpt::test::encode_image(ckpt::test::make_synthetic());
  std::vector<IntegrityRecord> segments;
  {
    auto intact = ImageReader::from_bytes(bytes);
    ASSERT_TRUE(intact) << intact.error().message();
    segments = segment_records(*intact);
  }
  ASSERT_FALSE(segments.empty());
  const IntegrityRecord &damaged = segments.back();
  bytes[damaged.offset + damaged.size / 2] ^= 0x5a;
  auto image = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(image) << image.error().message();
  Status regions = check_regions(*image, segments);
  Status verify = verify_integrity(*image);
  ASSERT_FALSE(regions);
  ASSERT_FALSE(verify);
  const std::string want = "checksum mismatch in segment " + std::to_string(damaged.index) + " (bytes " +
                           std::to_string(damaged.offset) + ".." + std::to_string(damaged.offset + damaged.size) +
                           ")";
  EXPECT_EQ(regions.error().message(), want);
  EXPECT_EQ(verify.error().message(), want);
}

// Messages of `sizes` bytes each (headers included), laid out as a kernel
// reply is: each padded to NLMSG_ALIGN.
std::vector<char> netlink_buffer(const std::vector<unsigned> &sizes) {
  std::vector<char> buf;
  for (unsigned size : sizes) {
    size_t at = buf.size();
    buf.resize(at + NLMSG_ALIGN(size), 0);
    nlmsghdr h{};
    h.nlmsg_len = size;
    h.nlmsg_type = NLMSG_DONE;
    std::memcpy(buf.data() + at, &h, sizeof h);
  }
  return buf;
}

std::vector<unsigned> walk(std::vector<char> &buf, size_t size) {
  std::vector<unsigned> seen;
  size_t left = size;
  for (auto *h = reinterpret_cast<nlmsghdr *>(buf.data()); nlmsg_ok(h, left); h = nlmsg_next(h, left))
    seen.push_back(h->nlmsg_len);
  return seen;
}

TEST(Netlink, EveryWholeMessageIsVisited) {
  auto buf = netlink_buffer({20, 23, 16});
  EXPECT_EQ(walk(buf, buf.size()), (std::vector<unsigned>{20, 23, 16}));
  // The last message unpadded, as the kernel may end a reply.
  EXPECT_EQ(walk(buf, buf.size() - 0), (std::vector<unsigned>{20, 23, 16}));
}

TEST(Netlink, AMessageLongerThanWhatWasReceivedEndsTheWalk) {
  auto buf = netlink_buffer({20, 40});
  // 20 + 30 bytes received: the second message is cut short.
  EXPECT_EQ(walk(buf, 50), (std::vector<unsigned>{20}));
  // A header shorter than a header: nothing at all.
  EXPECT_EQ(walk(buf, sizeof(nlmsghdr) - 1), (std::vector<unsigned>{}));
}

TEST(Netlink, APaddedLengthPastTheEndDoesNotWrapTheLengthLeft) {
  // One 17-byte message received as exactly 17 bytes: its padded length
  // (20) is more than what is left, which must reach 0, not wrap around to
  // a huge length that lets the walk read past the buffer.
  auto buf = netlink_buffer({17, 16});
  size_t left = 17;
  auto *h = reinterpret_cast<nlmsghdr *>(buf.data());
  ASSERT_TRUE(nlmsg_ok(h, left));
  h = nlmsg_next(h, left);
  EXPECT_EQ(left, 0u);
  EXPECT_FALSE(nlmsg_ok(h, left));
}

TEST(RestorerVerdict, AFailedAssertionNamesItsFileLineAndCondition) {
  std::string verdict = {char(RS_INTERNAL), 0, char(300 & 0xff), char(300 >> 8)};
  verdict += "map_memory.c";
  verdict += '\0';
  verdict += "run.check == 0";
  EXPECT_EQ(ckpt::reader::describe_restorer_failure(verdict),
            "restore failed: internal error: map_memory.c:300: RS_ASSERT(run.check == 0) failed");
}

}  // namespace
