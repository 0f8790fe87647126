// The PAGEMAP_SCAN ioctl on /proc/PID/pagemap (Linux 6.7): page categories
// of a range in one call, and write-protection of async uffd-wp pages.
// linux/fs.h of older headers lacks it (and PAGE_IS_GUARD, 6.14).
#pragma once

#include <cerrno>
#include <sys/ioctl.h>

#include <ckpt/img/format.h>

namespace ckpt::writer {

struct PmScanArg {
  img::u64 size, flags, start, end, walk_end, vec, vec_len, max_pages;
  img::u64 category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct PageRegion {
  img::u64 start, end, categories;
};
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);
// PmScanArg::flags.
constexpr img::u64 kPmScanWpMatching = 1u << 0;    ///< write-protect the pages that match
constexpr img::u64 kPmScanCheckWpAsync = 1u << 1;  ///< EPERM unless every VMA is uffd-wp async
// Page categories.
constexpr img::u64 kPageIsWritten = 1u << 1;       ///< no uffd-wp bit: written since protected
constexpr img::u64 kPageIsFile = 1u << 2;          ///< a page-cache page (not anonymous)
constexpr img::u64 kPageIsPresent = 1u << 3;
constexpr img::u64 kPageIsSwapped = 1u << 4;       ///< any swap entry: swapped out, or a marker
constexpr img::u64 kPageIsPfnZero = 1u << 5;       ///< the shared zero page (or the huge one)
constexpr img::u64 kPageIsGuard = 1u << 8;

/// Walks [start, end) of an open /proc/PID/pagemap with PAGEMAP_SCAN
/// (`flags`; `category` as both category_mask and return_mask) and calls
/// visit(const PageRegion &) for each run of matching pages, in address
/// order; a run may come in two pieces where a full vector ended one call.
/// Returns 0, or the errno of the ioctl that failed (*failed_at: the address
/// its walk started at), or EIO where the kernel's walk_end did not advance.
/// pagemap_scan_walk_masks does the same with the three masks apart: a
/// page matches when it has every category of `all` and, unless `any` is
/// 0, one of `any`; each run reports the categories of `returned` it has.
template <class Visit>
int pagemap_scan_walk_masks(int pagemap, img::u64 start, img::u64 end, img::u64 flags, img::u64 all, img::u64 any,
                            img::u64 returned, Visit visit, img::u64 *failed_at = nullptr) {
  PageRegion regions[512];
  for (img::u64 at = start; at < end;) {
    PmScanArg arg{};
    arg.size = sizeof arg;
    arg.flags = flags;
    arg.start = at;
    arg.end = end;
    arg.vec = reinterpret_cast<img::u64>(regions);
    arg.vec_len = sizeof regions / sizeof regions[0];
    arg.category_mask = all;
    arg.category_anyof_mask = any;
    arg.return_mask = returned;
    long n = ioctl(pagemap, kPagemapScan, &arg);
    if (n < 0) {
      if (failed_at) *failed_at = at;
      return errno;
    }
    for (long i = 0; i < n; i++) visit(regions[i]);
    // A full vector stops the walk early; walk_end says where.
    if (arg.walk_end <= at) {
      if (failed_at) *failed_at = at;
      return EIO;
    }
    at = arg.walk_end;
  }
  return 0;
}

template <class Visit>
int pagemap_scan_walk(int pagemap, img::u64 start, img::u64 end, img::u64 flags, img::u64 category, Visit visit,
                      img::u64 *failed_at = nullptr) {
  return pagemap_scan_walk_masks(pagemap, start, end, flags, category, 0, category, visit, failed_at);
}

}  // namespace ckpt::writer
