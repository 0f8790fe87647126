// CKPT DirtyTracking note (0x434b0040, docs/FORMAT.md §9.20, format 1.4):
// the dirty-page tracker a dump left armed in the process, and how an
// incremental image's pages were chosen against its parent.
//
// The record (DirtyTrackingRecord) is in records.h and the kind in the note
// registry (CKPT_NOTE_KINDS); this reads it from an image's first PT_NOTE
// without decoding the rest.
#pragma once

#include <optional>

#include <ckpt/img/format.h>
#include <ckpt/img/note.h>
#include <ckpt/img/records.h>
#include <ckpt/img/reader.h>
#include <ckpt/img/table.h>

namespace ckpt::img {

inline constexpr u32 kDirtyTrackingNoteType = static_cast<u32>(CkptNote::DirtyTracking);

/// The DirtyTracking table of an image's PT_NOTE 0 (of its root process),
/// if it has one: at most one record, its armed ranges inside the table's
/// data, whole pairs. The table points into the image's bytes.
Expected<std::optional<Table<DirtyTrackingRecord>>> read_dirty_tracking(const ImageReader &image);

/// The armed ranges of a record, as (start, end) pairs.
std::vector<std::pair<u64, u64>> armed_ranges(const Table<DirtyTrackingRecord> &table, const DirtyTrackingRecord &r);

}  // namespace ckpt::img
