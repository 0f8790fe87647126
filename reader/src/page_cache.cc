// Sampling a file's residency in the page cache (page_cache.h).
#include "page_cache.h"

#include <sys/mman.h>
#include <sys/stat.h>

namespace ckpt::reader {

using img::kPageSize;
using img::u64;

std::pair<unsigned, unsigned> sample_page_cache(int fd, const std::vector<std::pair<u64, u64>> &ranges,
                                                unsigned samples) {
  u64 total = 0;
  for (const auto &r : ranges) total += r.second;
  struct stat st{};
  if (total == 0 || samples == 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) return {0, 0};
  // mincore on a read-only shared mapping of the file: it asks the page
  // cache and reads nothing (a preadv2 RWF_NOWAIT probe would start the
  // read-ahead it asks about). Mapping costs no memory; it goes at once.
  // Kernel quirk (mm/mincore.c, can_do_mincore, Linux 5.0+): for a file
  // the caller neither owns nor may write, mincore reports every page
  // resident, so a restore of such an image is taken as hot: the
  // behaviour before this sampling.
  void *map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return {0, 0};
  unsigned resident = 0, sampled = 0;
  const u64 step = total / samples;
  u64 next = step / 2, passed = 0;
  for (const auto &[offset, len] : ranges) {
    while (sampled < samples && next < passed + len) {
      u64 at = (offset + (next - passed)) & ~(kPageSize - 1);
      unsigned char vec = 0;
      if (at < static_cast<u64>(st.st_size) && mincore(static_cast<char *>(map) + at, kPageSize, &vec) == 0) {
        sampled++;
        resident += vec & 1;
      }
      next += step ? step : 1;
    }
    passed += len;
  }
  munmap(map, static_cast<size_t>(st.st_size));
  return {resident, sampled};
}

}  // namespace ckpt::reader
