// Snapshot mode's memory plan in two steps (DECISIONS.md 175): reading
// pagemap is about as costly per GiB as the fork itself, so only the
// mappings a fork does not copy faithfully are planned (and read) while the
// tree is frozen; every other mapping is planned after the release, from
// the frozen copy's pagemap, which shows the same pages as the target's at
// the instant of the clone (fork copies the page tables of private memory
// it shares copy-on-write; the frames, the zero page and swap entries alike).
#pragma once

#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>

#include "excluded_pages.h"
#include "memory.h"

namespace ckpt::writer {

/// Memory whose bytes a fork does not copy as of its instant: read from
/// the target while it is still frozen (snapshot.cc).
bool read_while_frozen(const VmaPlan &v);

/// What a plan would store, estimated from smaps alone (anonymous and
/// swapped pages, shared memory whole): enough to choose the freeze mode.
img::u64 estimated_stored_bytes(const std::vector<MapEntry> &maps);

/// The plan of the mappings read while frozen: taken from `memory` where it
/// is planned already (it has runs), else planned now from the target.
/// `excluded`: the target's ckpt_exclude ranges, read while frozen.
img::Expected<std::vector<VmaPlan>> plan_read_while_frozen(pid_t target, const std::vector<VmaPlan> &memory,
                                                           const ExcludedRanges &excluded);

/// The whole plan once the target runs again: every mapping of `maps` (the
/// target's, as of the freeze) not in `early` planned from the copy, merged
/// with `early` in address order. `tracking`: what dirty tracking saw
/// since PREV (--parent), whose covered pieces are planned from
/// PAGEMAP_SCAN's runs (plan_memory).
img::Expected<std::vector<VmaPlan>> plan_from_copy(pid_t copy, const std::vector<MapEntry> &maps,
                                                   const std::vector<VmaPlan> &early, const ExcludedRanges &excluded,
                                                   const WrittenPages *tracking = nullptr);

}  // namespace ckpt::writer
