// The DirtyTracking note (dirty_tracking_note.h).
#include <ckpt/img/dirty_tracking_note.h>

#include <cstring>

namespace ckpt::img {

Expected<std::optional<Table<DirtyTrackingRecord>>> read_dirty_tracking(const ImageReader &image) {
  for (const NoteRef &n : image.notes()) {
    if (n.phdr != 0 || n.owner != kOwnerCkpt || n.type != kDirtyTrackingNoteType) continue;
    auto t = decode_table<DirtyTrackingRecord>(n.desc);
    if (!t) return t.error().context("dirty tracking note");
    if (t->records.size() > 1)
      return make_error("dirty tracking note has %zu records, not 1", t->records.size());
    for (const DirtyTrackingRecord &r : t->records) {
      auto b = t->blob(r.armed);
      if (!b) return b.error().context("dirty tracking record 0");
      if (b->size() % 16)
        return make_error("dirty tracking record 0: armed ranges of %zu bytes, not pairs of u64", b->size());
    }
    return std::optional<Table<DirtyTrackingRecord>>(t.take());
  }
  return std::optional<Table<DirtyTrackingRecord>>();
}

std::vector<std::pair<u64, u64>> armed_ranges(const Table<DirtyTrackingRecord> &table, const DirtyTrackingRecord &r) {
  std::vector<std::pair<u64, u64>> out;
  auto b = table.blob(r.armed);
  for (size_t i = 0; b && i + 16 <= b->size(); i += 16) {
    u64 pair[2];
    std::memcpy(pair, b->data() + i, 16);
    out.push_back({pair[0], pair[1]});
  }
  return out;
}

}  // namespace ckpt::img
