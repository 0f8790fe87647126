// Pages a process asked checkpoints to leave out (libckpt's ckpt_exclude,
// docs/FORMAT.md "Excluded pages"): found from outside through /proc, so
// that `imgtool dump` honours them as much as ckpt_checkpoint does.
#pragma once

#include <sys/types.h>
#include <utility>
#include <vector>

#include <ckpt/img/expected.h>

#include "memory.h"

namespace ckpt::writer {

/// [start, end) address ranges, sorted and merged.
using ExcludedRanges = std::vector<std::pair<img::u64, img::u64>>;

/// The ranges marked in process pid: every fd on a memfd named
/// "ckpt-exclude" holds a table of ranges, and every VMA named
/// "[anon:ckpt-exclude]" (PR_SET_VMA_ANON_NAME, where the kernel has it)
/// is excluded whole.
img::Expected<ExcludedRanges> read_excluded_ranges(pid_t pid, const std::vector<MapEntry> &maps);

/// Turns the excluded pages of private anonymous memory (anon, heap,
/// stack) into Zero runs: not stored, restored zero-filled with the VMA's
/// protection. Other kinds are left as they are (their bytes are a
/// file's or shared with another process).
void apply_exclusions(std::vector<VmaPlan> &plan, const ExcludedRanges &ranges);

}  // namespace ckpt::writer
