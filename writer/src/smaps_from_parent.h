// --parent: what smaps would add to /proc/PID/maps before the freeze,
// taken from what PREV recorded for the same mappings (DECISIONS 264).
// smaps walks every page table of the process; /proc/PID/maps does not.
// The window needs each mapping's VmFlags (read_while_frozen, refusals,
// arming) and an estimate of what is stored (snapshot or full freeze);
// PREV's VMA records hold the flags the image uses and the bytes stored.
// The copy's smaps then confirms every such flag as of the instant
// (confirm_smaps): a guess proved wrong fails the attempt, which is undone
// and runs again with smaps read inside the window (smaps_before.h).
#pragma once

#include <optional>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/chain.h>

#include "procfs.h"

namespace ckpt::writer {

/// `now` (pid's /proc/PID/maps, brief) with, for each mapping, VmFlags and
/// counters made from `prev` (PREV's core of the same pid): PREV's records
/// within each mapping (at least one, none reaching out of it) must have
/// its header and one set of flags; a hugetlb, DONTFORK or unread (Absent)
/// mapping, or any mapping PREV did not record so, makes it nothing (read
/// smaps).
std::optional<std::vector<MapEntry>> maps_with_parent_flags(const std::vector<MapEntry> &now,
                                                            const img::ChainLinkImage &prev);

/// The VmFlags a mapping with flags from PREV is confirmed on: those the
/// image records or the plan reads, and nothing PREV cannot say.
std::vector<std::string> flags_parent_can_say(const MapEntry &m);

}  // namespace ckpt::writer
