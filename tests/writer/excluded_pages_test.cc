// ckpt_exclude's marker as the dumper reads it (writer/src/excluded_pages.h,
// docs/FORMAT.md §11): the memfd table found through /proc, the anon-name
// marker (this kernel has no PR_SET_VMA_ANON_NAME, so it is fed as smaps
// would print it), and the Zero runs the plan gets.
#include "excluded_pages.h"

#include <gtest/gtest.h>

#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

namespace ckpt::writer {
namespace {

using img::PageSource;
using img::u32;
using img::u64;

int make_table(const std::vector<std::pair<u64, u64>> &ranges, const char *magic = "CKPTEXCL", u32 version = 1) {
  int fd = memfd_create("ckpt-exclude", MFD_CLOEXEC);
  std::vector<unsigned char> bytes(16 + ranges.size() * 16);
  std::memcpy(bytes.data(), magic, 8);
  u32 count = static_cast<u32>(ranges.size());
  std::memcpy(bytes.data() + 8, &version, 4);
  std::memcpy(bytes.data() + 12, &count, 4);
  for (size_t i = 0; i < ranges.size(); i++) {
    std::memcpy(bytes.data() + 16 + i * 16, &ranges[i].first, 8);
    std::memcpy(bytes.data() + 24 + i * 16, &ranges[i].second, 8);
  }
  EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  return fd;
}

TEST(ExcludedPages, TablesAndAnonNamesAreMerged) {
  int a = make_table({{0x10000, 0x12000}, {0x30000, 0x31000}});
  int b = make_table({{0x11000, 0x14000}});
  MapEntry named;
  named.start = 0x40000;
  named.end = 0x42000;
  named.path = "[anon:ckpt-exclude]";
  auto r = read_excluded_ranges(getpid(), {named});
  ASSERT_TRUE(r) << r.error().message();
  ExcludedRanges want = {{0x10000, 0x14000}, {0x30000, 0x31000}, {0x40000, 0x42000}};
  EXPECT_EQ(*r, want);
  close(a);
  close(b);
}

TEST(ExcludedPages, DamagedTableFailsTheDump) {
  int bad = make_table({{0x10000, 0x10800}});  // not whole pages
  auto r = read_excluded_ranges(getpid(), {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("not whole pages"), std::string::npos) << r.error().message();
  close(bad);
  int magic = make_table({}, "NOTCKPTX");
  r = read_excluded_ranges(getpid(), {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("damaged"), std::string::npos) << r.error().message();
  close(magic);
}

VmaPlan vma(img::VmaKind kind, u64 start, u64 end, std::vector<PageRun> runs, u32 flags = 0) {
  VmaPlan v;
  v.map.start = start;
  v.map.end = end;
  v.kind = kind;
  v.flags = flags;
  v.runs = std::move(runs);
  return v;
}

TEST(ExcludedPages, PrivateAnonymousPagesBecomeZeroRuns) {
  std::vector<VmaPlan> plan = {
      vma(img::VmaKind::Anon, 0x10000, 0x18000,
          {{0x10000, 0x4000, PageSource::Image}, {0x14000, 0x2000, PageSource::Zero}, {0x16000, 0x2000, PageSource::Image}}),
      vma(img::VmaKind::File, 0x20000, 0x22000, {{0x20000, 0x2000, PageSource::Image}}),
      vma(img::VmaKind::Anon, 0x30000, 0x32000, {{0x30000, 0x2000, PageSource::Image}}, img::kVmaShared),
  };
  apply_exclusions(plan, {{0x11000, 0x13000}, {0x15000, 0x17000}, {0x20000, 0x22000}, {0x30000, 0x32000}});
  const auto &r = plan[0].runs;
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0].start, 0x10000u);
  EXPECT_EQ(r[0].length, 0x1000u);
  EXPECT_EQ(r[0].source, PageSource::Image);
  EXPECT_EQ(r[1].start, 0x11000u);  // excluded, merged with nothing
  EXPECT_EQ(r[1].length, 0x2000u);
  EXPECT_EQ(r[1].source, PageSource::Zero);
  EXPECT_EQ(r[2].start, 0x13000u);
  EXPECT_EQ(r[2].length, 0x1000u);
  EXPECT_EQ(r[2].source, PageSource::Image);
  EXPECT_EQ(r[3].start, 0x14000u);  // zero run, excluded part and all, one run
  EXPECT_EQ(r[3].length, 0x3000u);
  EXPECT_EQ(r[3].source, PageSource::Zero);
  EXPECT_EQ(r[4].start, 0x17000u);
  EXPECT_EQ(r[4].length, 0x1000u);
  EXPECT_EQ(r[4].source, PageSource::Image);
  // A file's and a shared mapping's bytes are not the process's to drop.
  EXPECT_EQ(plan[1].runs[0].source, PageSource::Image);
  EXPECT_EQ(plan[2].runs[0].source, PageSource::Image);
}

}  // namespace
}  // namespace ckpt::writer
