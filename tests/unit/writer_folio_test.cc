// ImageWriter's page-cache footprint: segment data given to it in 8 MiB
// pieces (as the dump's memory batches are) reaches a regular file in
// writes small enough that the kernel fills the page cache with folios of
// at most 256 KiB in the file's first GiB and 64 KiB after it (DECISIONS
// 186, 2002). ext4 (Linux 6.16+) sizes a buffered write's folios by
// the write's length, and on the project VM folios of 512 KiB and more cost
// about 8x per byte to fill (bench/README.md, "Where a dump's CPU goes";
// DECISIONS 186). The folios are read from /proc/kpageflags (root). On a
// filesystem without large folios every folio is one page and the test
// passes; it cannot time anything, so it checks the sizes that cause the
// cost.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include <ckpt/img/reader.h>
#include <ckpt/img/writer.h>

#include "synthetic.h"

namespace {

using namespace ckpt::img;

constexpr u64 kBig = 32ull << 20;
constexpr u64 kPiece = 8ull << 20;

// /proc/kpageflags bits (Documentation/admin-guide/mm/pagemap.rst).
constexpr u64 kKpfCompoundHead = 1ull << 15;
constexpr u64 kKpfCompoundTail = 1ull << 16;
constexpr u64 kPmPresent = 1ull << 63;
constexpr u64 kPmPfnMask = (1ull << 55) - 1;

// The longest run of page-cache pages of fd's [offset, offset + len) that
// belong to one compound folio, in bytes; 0 when page frames are hidden
// from this user.
u64 largest_folio(int fd, u64 offset, u64 len) {
  void *map = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset));
  EXPECT_NE(map, MAP_FAILED) << strerror(errno);
  if (map == MAP_FAILED) return 0;
  EXPECT_EQ(madvise(map, len, MADV_WILLNEED), 0);
  volatile u8 sum = 0;
  for (u64 off = 0; off < len; off += 4096) sum = sum + static_cast<const u8 *>(map)[off];
  int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  int kpageflags = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
  std::vector<u64> entries(len / 4096);
  bool read_all = pagemap >= 0 && pread(pagemap, entries.data(), entries.size() * 8,
                                        reinterpret_cast<u64>(map) / 4096 * 8) ==
                                      static_cast<ssize_t>(entries.size() * 8);
  if (pagemap >= 0) close(pagemap);
  u64 largest = 0, run = 0;
  if (read_all && kpageflags >= 0 && (entries[0] & kPmPfnMask)) {
    largest = 1;
    for (u64 e : entries) {
      EXPECT_TRUE(e & kPmPresent);
      u64 flags = 0;
      EXPECT_EQ(pread(kpageflags, &flags, 8, (e & kPmPfnMask) * 8), 8);
      if (flags & kKpfCompoundTail)
        run++;
      else
        run = (flags & kKpfCompoundHead) ? 1 : 0;
      largest = std::max(largest, run);
    }
  }
  if (kpageflags >= 0) close(kpageflags);
  munmap(map, len);
  return largest * 4096;
}

// The first GiB of the file gets folios of at most 256 KiB, the rest of at
// most 64 KiB (DECISIONS 243). A GiB of zeros between the two data
// segments is a hole: no page cache, no disk.
TEST(ImageWriterPageCache, SegmentDataLandsInFoliosOf256KiBThen64KiB) {
  char tmpl[] = "/var/tmp/ckpt-folio-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl, path = dir + "/big.img";
  auto im = ckpt::test::make_synthetic();
  constexpr u64 kGap = 1ull << 30;
  const u64 early_vaddr = 0x7f0000000000ull, late_vaddr = early_vaddr + kBig + kGap;
  im.segments.push_back({early_vaddr, kBig, kBig, PF_R | PF_W});
  im.segments.push_back({early_vaddr + kBig, kGap, kGap, PF_R | PF_W});
  im.segments.push_back({late_vaddr, kBig, kBig, PF_R | PF_W});
  auto w = ImageWriter::create(im.notes.encode(), im.segments);
  ASSERT_TRUE(w) << w.error().message();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(w->begin(fd));
  for (const auto &d : im.segment_data) ASSERT_TRUE(w->write(d));
  // Page-aligned 8 MiB pieces of non-zero bytes, like the dump's batches.
  void *piece = mmap(nullptr, kPiece, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(piece, MAP_FAILED);
  for (u64 done = 0; done < kBig; done += kPiece) {
    std::memset(piece, static_cast<int>(done / kPiece) + 1, kPiece);
    ASSERT_TRUE(w->write({static_cast<const u8 *>(piece), kPiece}));
  }
  ASSERT_TRUE(w->write_zeros(kGap));
  for (u64 done = 0; done < kBig; done += kPiece) {
    std::memset(piece, static_cast<int>(done / kPiece) + 9, kPiece);
    ASSERT_TRUE(w->write({static_cast<const u8 *>(piece), kPiece}));
  }
  munmap(piece, kPiece);
  ASSERT_TRUE(w->finish());
  const auto &offsets = w->layout().segment_offsets;
  const u64 early = offsets[offsets.size() - 3], late = offsets.back();
  ASSERT_LT(early + kBig, 1ull << 30);
  ASSERT_GE(late, 1ull << 30);
  u64 early_folio = largest_folio(fd, early, kBig), late_folio = largest_folio(fd, late, kBig);
  close(fd);
  unlink(path.c_str());
  rmdir(dir.c_str());
  if (!early_folio) GTEST_SKIP() << "page frames are not shown to this user (needs CAP_SYS_ADMIN for pagemap PFNs and kpageflags)";
  EXPECT_LE(early_folio, 256u << 10) << "a page-cache folio of " << early_folio / 1024 << " KiB in the first GiB";
  EXPECT_LE(late_folio, 64u << 10) << "a page-cache folio of " << late_folio / 1024 << " KiB after the first GiB";
}

}  // namespace
