// The PAGEMAP_SCAN ioctl on /proc/PID/pagemap (Linux 6.7): page categories
// of a range in one call, and write-protection of async uffd-wp pages.
// linux/fs.h of older headers lacks it (and PAGE_IS_GUARD, 6.14).
#pragma once

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
constexpr img::u64 kPageIsGuard = 1u << 8;

}  // namespace ckpt::writer
