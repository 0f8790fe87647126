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
//
// A shared memory object several processes map (MAP_SHARED|MAP_ANONYMOUS
// memory inherited across fork, a shared memfd or unlinked /dev/shm file,
// a SysV segment, shared hugetlb memory) is one object whatever the
// addresses: a page of it is named by the object (kind, device and inode,
// as maps shows them: the key restore makes one object of) and its offset
// in it, not by address or frame (a page one process never touched has no
// frame in its page table, yet is the same page). The first process in
// image order that maps a page of the object stores it; every later
// mapping of that page, at whatever address, refers to it.
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
  img::u64 bytes = 0;    ///< private bytes not stored again (Earlier)
  img::u64 shared_object_bytes = 0;  ///< bytes of shared memory objects not stored again (Earlier)
  size_t ranges = 0;     ///< Earlier runs made
};

/// Whether v maps a shared memory object whose bytes the image stores
/// (shared anonymous, hugetlb or SysV memory, or a deleted file mapped
/// shared), which share_cow_pages matches by object and offset.
bool is_shared_memory_object(const VmaPlan &v);

/// Rewrites the Image runs of every process after the first whose pages
/// have the frame of a page an earlier process stores, or are the same
/// page of a shared memory object an earlier process stores, into Earlier
/// runs.
/// An Earlier run's source lies within one Image run of its source (one
/// page range, one PT_LOAD). Processes without frames (PFNs unreadable)
/// keep every private page.
CowSharing share_cow_pages(const std::vector<SharingMember> &members);

}  // namespace ckpt::writer
