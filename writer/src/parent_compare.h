// Page selection for an incremental dump (`dump --parent PREV`): which of
// the pages the memory plan would store are unchanged since PREV, and so
// become Parent ranges (docs/FORMAT.md §12.2). Only selection lives here;
// how the remaining Image pages are read and written is memory_stream's.
#pragma once

#include <sys/types.h>
#include <vector>

#include <ckpt/img/chain.h>

#include "dirty_tracking.h"
#include "memory.h"
#include "snapshot.h"

namespace ckpt::writer {

/// What selection did, for --stats and the tests.
struct ParentSelection {
  img::u64 parent_bytes = 0;     ///< bytes that became Parent
  img::u64 compared_bytes = 0;   ///< bytes read and compared against the parent
  img::u64 tracked_bytes = 0;    ///< bytes the dirty-page tracker decided, unread
  img::u64 written_bytes = 0;    ///< of those, written since the parent (stored)
};

/// Rewrites the Image runs of private anonymous and private file memory of
/// `plan` (process `pid`: the frozen target, or its snapshot copy): a page whose bytes equal the bytes the
/// chain `parent` (its core in PREV first) has at that address becomes
/// Parent. With
/// `written` (dirty tracking since PREV), a page in its tracked ranges that
/// PREV stores becomes Parent without being read unless tracking says it
/// was written; every other candidate page is read and compared.
/// Pages PREV does not store (new mappings, Zero or File there) stay as
/// planned. `early`: with a snapshot copy, the bytes read while frozen of
/// the mappings the copy does not hold as of the instant (shared memory:
/// snapshot_plan.h read_while_frozen), compared instead of the copy's.
img::Expected<ParentSelection> select_parent_pages(pid_t pid, std::vector<VmaPlan> &plan,
                                                   const img::ProcessChain &parent, const WrittenPages *written,
                                                   const PagesReadEarlier *early = nullptr);

/// The core in PREV (`parent[0]`, a single process or a tree) of the same
/// process as `pc`: the same pid and, but for the root (the process PREV
/// was named for, matched by pid as a single process always was), the same
/// start time in the same boot where PREV recorded them (format 1.6), so
/// that a reused pid is a new process. nullptr: new since PREV (stored
/// whole, as a full core).
const img::ChainLinkImage *matching_core(const img::Chain &parent, const ProcessCapture &pc, bool root);

}  // namespace ckpt::writer
