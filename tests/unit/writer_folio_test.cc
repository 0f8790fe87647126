// ImageWriter's page-cache footprint: segment data given to it in 8 MiB
// pieces (as the dump's memory batches are) reaches a regular file in
// writes small enough that the kernel fills the page cache with folios of
// at most 64 KiB (DECISIONS 186, 2002). ext4 (Linux 6.16+) sizes a buffered write's folios by
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

TEST(ImageWriterPageCache, SegmentDataLandsInFoliosOfAtMost64KiB) {
  char tmpl[] = "/var/tmp/ckpt-folio-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl, path = dir + "/big.img";
  auto im = ckpt::test::make_synthetic();
  im.segments.push_back({0x7f0000000000ull, kBig, kBig, PF_R | PF_W});
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
  munmap(piece, kPiece);
  ASSERT_TRUE(w->finish());
  const u64 big_offset = w->layout().segment_offsets.back();

  // The big segment's page-cache pages, by frame, through a mapping of the file.
  void *map = mmap(nullptr, kBig, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(big_offset));
  ASSERT_NE(map, MAP_FAILED) << strerror(errno);
  ASSERT_EQ(madvise(map, kBig, MADV_WILLNEED), 0);
  volatile u8 sum = 0;
  for (u64 off = 0; off < kBig; off += 4096) sum = sum + static_cast<const u8 *>(map)[off];
  int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  int kpageflags = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(pagemap, 0);
  std::vector<u64> entries(kBig / 4096);
  ASSERT_EQ(pread(pagemap, entries.data(), entries.size() * 8, reinterpret_cast<u64>(map) / 4096 * 8),
            static_cast<ssize_t>(entries.size() * 8));
  close(pagemap);
  if (kpageflags < 0 || !(entries[0] & kPmPfnMask)) {
    munmap(map, kBig);
    close(fd);
    unlink(path.c_str());
    rmdir(dir.c_str());
    GTEST_SKIP() << "page frames are not shown to this user (needs CAP_SYS_ADMIN for pagemap PFNs and kpageflags)";
  }
  // The longest run of pages belonging to one compound folio.
  u64 largest = 1, run = 0;
  for (u64 e : entries) {
    ASSERT_TRUE(e & kPmPresent);
    u64 flags = 0;
    ASSERT_EQ(pread(kpageflags, &flags, 8, (e & kPmPfnMask) * 8), 8);
    if (flags & kKpfCompoundTail)
      run++;
    else
      run = (flags & kKpfCompoundHead) ? 1 : 0;
    largest = std::max(largest, run);
  }
  close(kpageflags);
  munmap(map, kBig);
  close(fd);
  unlink(path.c_str());
  rmdir(dir.c_str());
  EXPECT_LE(largest * 4096, 64u << 10) << "a page-cache folio of " << largest * 4 << " KiB";
}

}  // namespace
