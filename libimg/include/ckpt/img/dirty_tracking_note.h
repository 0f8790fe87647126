// CKPT DirtyTracking note (0x434b0040, docs/FORMAT.md §9.20, format 1.4):
// the dirty-page tracker a dump left armed in the process, and how an
// incremental image's pages were chosen against its parent.
//
// Kept apart from records.h/format.h for this branch only (wip-uffd):
// every file of the project includes those, and the shared machine could
// not rebuild them all this session. The lead's merge moves the record to
// the end of records.h and the type into CkptNote (and the note registry).
#pragma once

#include <optional>

#include <ckpt/img/note.h>
#include <ckpt/img/reader.h>
#include <ckpt/img/table.h>

namespace ckpt::img {

inline constexpr u32 kDirtyTrackingNoteType = 0x434b0040;

/// A later `dump --parent` of the image trusts tracking only if it finds
/// the tracker with this inode in the same process (pid, start time, boot)
/// and only in `armed` ranges still registered.
struct DirtyTrackingRecord {
  u8 boot_id[16];           ///< /proc/sys/kernel/random/boot_id of the dump
  u64 tracker_ino;          ///< inode of the tracker armed at this dump; 0: none armed
  u64 start_time;           ///< the process's start (stat field 22, clock ticks since boot)
  i32 pid;
  u32 flags;                ///< DirtyTrackingFlags
  u64 tracked_bytes;        ///< --parent: candidate bytes tracking decided (not read)
  u64 written_bytes;        ///< of those, bytes written since the parent (stored)
  u64 compared_bytes;       ///< --parent: bytes compared with the parent byte for byte
  BlobRef armed;            ///< u64 pairs [start, end): ranges registered and write-protected
};
static_assert(sizeof(DirtyTrackingRecord) == 80);

/// DirtyTrackingRecord::flags.
enum DirtyTrackingFlags : u32 {
  kTrackingUsed = 1u << 0,  ///< tracking since the parent decided some pages of this image
};

/// The note for an image's PT_NOTE 0 (after every other CKPT table: it has
/// the highest type of them).
inline Note make_dirty_tracking_note(const TableBuilder<DirtyTrackingRecord> &table) {
  return make_ckpt_note(static_cast<CkptNote>(kDirtyTrackingNoteType), table.encode());
}

/// The DirtyTracking table of an image's PT_NOTE 0 (of its root process),
/// if it has one: at most one record, its armed ranges inside the table's
/// data, whole pairs. The table points into the image's bytes.
Expected<std::optional<Table<DirtyTrackingRecord>>> read_dirty_tracking(const ImageReader &image);

/// The armed ranges of a record, as (start, end) pairs.
std::vector<std::pair<u64, u64>> armed_ranges(const Table<DirtyTrackingRecord> &table, const DirtyTrackingRecord &r);

}  // namespace ckpt::img
