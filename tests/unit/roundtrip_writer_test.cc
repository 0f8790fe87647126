// PN_XNUM for images with 65535 segments or more, and the writer's
// refusals.
#include <cerrno>
#include <csignal>
#include <elf.h>
#include <fcntl.h>

#include <ckpt/reader/validate.h>

#include "roundtrip_fixture.h"
#include "synthetic.h"

using namespace ckpt::img;
using namespace ckpt::img::roundtrip;

// ---- PN_XNUM ---------------------------------------------------------------

TEST(PnXnum, ManySegmentsUseSectionZero) {
  ckpt::test::SyntheticOptions o;
  o.extra_segments = 65540;
  auto im = ckpt::test::make_synthetic(o);
  const size_t want_phnum = im.segments.size() + 2;
  ASSERT_GE(want_phnum, size_t(0xffff));
  auto bytes = ckpt::test::encode_image(im);
  ASSERT_FALSE(bytes.empty());

  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof eh);
  EXPECT_EQ(eh.e_phnum, 0xffff);
  EXPECT_EQ(eh.e_shnum, 1);
  EXPECT_EQ(eh.e_shentsize, sizeof(Elf64_Shdr));
  EXPECT_EQ(eh.e_shstrndx, 0);
  ASSERT_NE(eh.e_shoff, 0u);
  ASSERT_LE(eh.e_shoff + sizeof(Elf64_Shdr), bytes.size());
  EXPECT_EQ(eh.e_shoff % 8, 0u);
  Elf64_Shdr sh0;
  std::memcpy(&sh0, bytes.data() + eh.e_shoff, sizeof sh0);
  EXPECT_EQ(sh0.sh_info, want_phnum);
  EXPECT_EQ(sh0.sh_type, u32(SHT_NULL));
  EXPECT_EQ(sh0.sh_size, 0u);
  EXPECT_EQ(sh0.sh_link, 0u);

  auto r = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(r) << r.error().message();
  const auto &ph = r->phdrs();
  ASSERT_EQ(ph.size(), want_phnum);
  EXPECT_EQ(ph.front().p_type, u32(PT_NOTE));
  EXPECT_EQ(ph.back().p_type, u32(PT_NOTE));
  EXPECT_EQ(ph.front().p_offset, kPhdrOffset + want_phnum * sizeof(Elf64_Phdr));
  // The section header sits after the data and before the integrity note,
  // and the file ends at the integrity note.
  EXPECT_LT(eh.e_shoff, ph.back().p_offset);
  EXPECT_EQ(ph.back().p_offset + ph.back().p_filesz, bytes.size());
  for (size_t i = 1; i + 1 < ph.size(); i++) {
    ASSERT_EQ(ph[i].p_type, u32(PT_LOAD)) << i;
    if (i <= im.segments.size()) {
      ASSERT_EQ(ph[i].p_vaddr, im.segments[i - 1].vaddr) << i;
      ASSERT_EQ(ph[i].p_memsz, im.segments[i - 1].memsz) << i;
      ASSERT_EQ(ph[i].p_filesz, im.segments[i - 1].filesz) << i;
    }
  }
  Status s = verify_integrity(*r);
  EXPECT_TRUE(s) << s.error().message();
  auto v = decode_ckpt(*r);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->vmas.records.size(), 4u);
  auto c = decode_core(*r);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->threads.size(), 3u);
  Status vs = ckpt::reader::validate_one(*r);
  EXPECT_TRUE(vs) << vs.error().message();
  auto m = r->read_memory(0x10000000, 16);
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)[1], 7);
}

TEST(PnXnum, ThresholdIsExact) {
  // 0xfffe headers fit e_phnum; 0xffff need PN_XNUM (the value itself is
  // reserved).
  std::vector<Note> notes;
  std::vector<SegmentPlan> segs;
  for (u64 i = 0; i < 0xfffe - 2; i++) segs.push_back({i * 0x1000, 0x1000, 0, PF_R});
  auto l = plan_layout(notes, segs);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->phnum, 0xfffeu);
  EXPECT_EQ(l->shdr_offset, 0u);
  segs.push_back({0xfffe0000ull * 0x10, 0x1000, 0, PF_R});
  l = plan_layout(notes, segs);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->phnum, 0xffffu);
  EXPECT_NE(l->shdr_offset, 0u);
}

// ---- Writer refusals ----------------------------------------------------------

TEST(WriterErrors, PlanRejectsBadSegments) {
  std::vector<Note> notes = {Note{"CKPT", 0x434b0001, std::vector<u8>(sizeof(TableHeader) + sizeof(IdentityRecord))}};
  auto expect_reject = [&](std::vector<SegmentPlan> segs, const char *why) {
    auto l = plan_layout(notes, segs);
    EXPECT_FALSE(l) << why;
    auto w = ImageWriter::create(notes, segs);
    EXPECT_FALSE(w) << why;
  };
  expect_reject({{0x2000, 0x1000, 0, PF_R}, {0x1000, 0x1000, 0, PF_R}}, "out of order");
  expect_reject({{0x1000, 0x2000, 0, PF_R}, {0x2000, 0x1000, 0, PF_R}}, "overlapping");
  expect_reject({{0x1000, 0x1000, 0, PF_R}, {0x1000, 0x1000, 0, PF_R}}, "duplicate");
  expect_reject({{0x1000, 0x1000, 0x1001, PF_R}}, "filesz > memsz");
  expect_reject({{~u64(0) - 0xfff, 0x2000, 0, PF_R}}, "wraps");
  expect_reject({{0x1800, 0x1000, 0, PF_R}}, "vaddr not page-aligned");
  expect_reject({{0x1000, 0, 0, PF_R}}, "empty segment");
  SegmentPlan zero{0x1000, 0x2000, 0x1000, PF_R};
  zero.zero = true;
  expect_reject({zero}, "zero segment with filesz != memsz");
  // Adjacent segments are fine, and so is filesz == memsz.
  EXPECT_TRUE(plan_layout(notes, {{0x1000, 0x1000, 0x1000, PF_R}, {0x2000, 0x1000, 0, PF_R}}));
  EXPECT_TRUE(plan_layout(notes, {}));
}

TEST(WriterErrors, TooFewBytesFailsFinish) {
  std::vector<SegmentPlan> segs = {{0x1000, 0x2000, 0x2000, PF_R}, {0x4000, 0x1000, 0x10, PF_R}};
  auto w = ImageWriter::create({}, segs);
  ASSERT_TRUE(w) << w.error().message();
  int fd = memfd_create("few", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(w->begin(fd));
  std::vector<u8> data(0x2000 + 0xf, 1);
  ASSERT_TRUE(w->write(data));
  Status s = w->finish();
  EXPECT_FALSE(s);
  close(fd);

  auto w2 = ImageWriter::create({}, segs);
  ASSERT_TRUE(w2);
  fd = memfd_create("none", MFD_CLOEXEC);
  ASSERT_TRUE(w2->begin(fd));
  EXPECT_FALSE(w2->finish()) << "no segment data at all";
  close(fd);
}

TEST(WriterErrors, TooManyBytesFailsWrite) {
  std::vector<SegmentPlan> segs = {{0x1000, 0x2000, 0x100, PF_R}, {0x4000, 0x1000, 0, PF_R}};
  auto w = ImageWriter::create({}, segs);
  ASSERT_TRUE(w);
  int fd = memfd_create("many", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(w->begin(fd));
  std::vector<u8> data(0x101, 1);
  EXPECT_FALSE(w->write(data));
  close(fd);

  // Exactly enough, then one more byte.
  auto w2 = ImageWriter::create({}, segs);
  ASSERT_TRUE(w2);
  fd = memfd_create("many2", MFD_CLOEXEC);
  ASSERT_TRUE(w2->begin(fd));
  ASSERT_TRUE(w2->write(std::span<const u8>(data).first(0x100)));
  u8 one = 0;
  EXPECT_FALSE(w2->write({&one, 1}));
  close(fd);

  // write_zeros past the end fails the same way.
  auto wz = ImageWriter::create({}, segs);
  ASSERT_TRUE(wz);
  fd = memfd_create("many-zeros", MFD_CLOEXEC);
  ASSERT_TRUE(wz->begin(fd));
  EXPECT_FALSE(wz->write_zeros(0x101));
  close(fd);

  // No segments with data at all.
  auto w3 = ImageWriter::create({}, {{0x1000, 0x1000, 0, PF_R}});
  ASSERT_TRUE(w3);
  fd = memfd_create("many3", MFD_CLOEXEC);
  ASSERT_TRUE(w3->begin(fd));
  EXPECT_FALSE(w3->write({&one, 1}));
  EXPECT_TRUE(w3->finish());
  close(fd);
}

TEST(WriterErrors, CallOrder) {
  auto w = ImageWriter::create({}, {{0x1000, 0x1000, 0x10, PF_R}});
  ASSERT_TRUE(w);
  u8 b[16] = {};
  EXPECT_FALSE(w->write(b)) << "write before begin";
  EXPECT_FALSE(w->finish()) << "finish before begin";
  int fd = memfd_create("order", MFD_CLOEXEC);
  ASSERT_TRUE(w->begin(fd));
  EXPECT_FALSE(w->begin(fd)) << "begin twice";
  close(fd);
}

TEST(WriterErrors, WriteFailureIsReported) {
  // A pipe whose read end is closed: write(2) fails with EPIPE (SIGPIPE is
  // ignored for this test) and the writer must say so instead of
  // pretending success.
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &old);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  close(p[0]);
  auto w = ImageWriter::create({}, {{0x1000, 0x1000, 0x10, PF_R}});
  ASSERT_TRUE(w);
  bool failed = !w->begin(p[1]);
  u8 b[16] = {};
  if (!failed) failed = !w->write(b);
  if (!failed) failed = !w->finish();
  EXPECT_TRUE(failed);
  close(p[1]);
  sigaction(SIGPIPE, &old, nullptr);
}
