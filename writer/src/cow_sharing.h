// Memory a forked tree still shares copy-on-write, stored once (issue 9,
// FORMAT.md §9.23, DECISIONS.md 157).
//
// A private page that a later process of the tree maps with the same
// physical frame (pagemap PFN) as a page an earlier process stores is the
// same page: its bytes are identical, exactly, with nothing hashed or
// compared. The tree is frozen while pagemap is read, so no page can be
// written in between; in snapshot mode the bytes are read later from the
// frozen copies, which hold every page as it was at the freeze, so the
// match made at the freeze still holds. Such pages become Earlier runs
// that name the process and address storing them; libimg turns those into
// file offsets.
#pragma once

#include <sys/types.h>
#include <vector>

#include <ckpt/img/records.h>

#include "memory.h"

namespace ckpt::writer {

/// One process's memory plan, in image order (the root first).
struct SharingMember {
  pid_t pid = 0;
  std::vector<VmaPlan> *memory = nullptr;
};

struct CowSharing {
  img::u64 bytes = 0;    ///< bytes not stored again (Earlier)
  size_t ranges = 0;     ///< Earlier runs made
};

/// Rewrites the Image runs of every process after the first whose pages
/// have the frame of a page an earlier process stores into Earlier runs.
/// An Earlier run's source lies within one Image run of its source (one
/// page range, one PT_LOAD). Processes without frames (PFNs unreadable)
/// keep every page.
CowSharing share_cow_pages(const std::vector<SharingMember> &members);

}  // namespace ckpt::writer
