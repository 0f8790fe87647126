// Guard pages (madvise(MADV_GUARD_INSTALL), Linux 6.13+): page table
// markers that raise SIGSEGV on access, invisible in smaps; found with the
// PAGEMAP_SCAN ioctl's PAGE_IS_GUARD category (Linux 6.14+).
#pragma once

#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

#include "procfs.h"

namespace ckpt::writer {

/// The guard ranges of pid within `maps`, ascending. Empty on a kernel
/// without PAGEMAP_SCAN or PAGE_IS_GUARD (docs/DECISIONS.md).
img::Expected<std::vector<img::GuardRangeRecord>> read_guard_ranges(pid_t pid, const std::vector<MapEntry> &maps);

}  // namespace ckpt::writer
