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

namespace ckpt::writer {

/// What selection did, for --stats and the tests.
struct ParentSelection {
  img::u64 parent_bytes = 0;     ///< bytes that became Parent
  img::u64 compared_bytes = 0;   ///< bytes read and compared against the parent
  img::u64 tracked_bytes = 0;    ///< bytes the dirty-page tracker decided, unread
  img::u64 written_bytes = 0;    ///< of those, written since the parent (stored)
};

/// Rewrites the Image runs of private anonymous and private file memory of
/// `plan` (process `pid`, frozen): a page whose bytes equal the bytes the
/// chain `parent` (PREV first) has at that address becomes Parent. With
/// `written` (dirty tracking since PREV), a page in its tracked ranges that
/// PREV stores becomes Parent without being read unless tracking says it
/// was written; every other candidate page is read and compared.
/// Pages PREV does not store (new mappings, Zero or File there) stay as
/// planned.
img::Expected<ParentSelection> select_parent_pages(pid_t pid, std::vector<VmaPlan> &plan, const img::Chain &parent,
                                                   const WrittenPages *written);

}  // namespace ckpt::writer
