// smaps read before the freeze (DECISIONS 218). Reading /proc/PID/smaps
// walks every page table of the process (about what a fork's page-table
// copy costs), and the frozen window only needs it for each mapping's
// VmFlags and the page counters. Snapshot mode (with --parent too since
// DECISIONS 229) now reads it before the freeze; inside the window /proc/PID/maps (no page walk) must
// show the same mappings, and no mapping may be locked (VmLck 0: fork drops
// "lo"/"lf", so the copy could not confirm them). After the release the
// copy's smaps confirms the VmFlags as of the instant (fork keeps them all
// but the ones named in kFlagsForkDrops) and gives the page counters; a
// difference fails this attempt, undone like any failed dump, and the dump
// runs again with smaps read inside the window. `--parent` reads only
// /proc/PID/maps before the freeze where PREV's records give the flags
// (smaps_from_parent.h, DECISIONS 264); the copy's smaps confirms them.
#pragma once

#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/chain.h>
#include <ckpt/img/expected.h>

#include "procfs.h"

namespace ckpt::writer {

/// smaps of every process of the tree under `root` as it is now (before
/// the freeze), by pid. A process that cannot be read is left out (it is
/// read inside the window then). With `parent` (--parent's chain, may be
/// empty), a process PREV holds gets /proc/PID/maps with the flags PREV
/// recorded where they fit (smaps_from_parent.h), smaps otherwise.
std::map<pid_t, std::vector<MapEntry>> read_smaps_before_freeze(pid_t root, const img::Chain &parent);

/// Whether a and b are the same line of /proc/PID/maps: bounds, prot,
/// sharing, offset, device, inode and path.
bool same_header(const MapEntry &a, const MapEntry &b);

/// Inside the window: `before` (pid's smaps read before the freeze) when
/// /proc/PID/maps shows exactly its mappings and `status` (read in the
/// window) says nothing is locked, with the page counters of every mapping
/// read while frozen replaced by safe values (snapshot_plan.h's list:
/// plan_memory must walk pagemap there). Otherwise nothing (read smaps).
img::Expected<std::optional<std::vector<MapEntry>>> adopt_smaps_before(pid_t pid, const std::vector<MapEntry> &before,
                                                                        const ProcStatus &status);

/// Whether `later` (the smaps of the snapshot copy, or of the target still
/// frozen when `of_copy` is false) shows the mappings of `maps` (adopted
/// from before the freeze) with the same VmFlags, apart from what fork
/// drops in the copy. On a match, each mapping of `maps` takes its page
/// counters from `later` (where mappings merged since, by the dirty
/// tracker's registration, a conservative non-zero where any part has
/// pages). A mapping whose flags came from the parent image
/// (flags_from_parent) is compared on the flags PREV can say and takes
/// the copy's VmFlags. On a difference: false, `why` says where.
bool confirm_smaps(std::vector<MapEntry> &maps, const std::vector<MapEntry> &later, bool of_copy, std::string &why);

}  // namespace ckpt::writer
