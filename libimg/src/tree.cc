// The Tree of a root image (FORMAT.md §12.1): bounds of the embedded cores
// against the root's own layout, checked before any is followed.
#include <ckpt/img/reader.h>
#include <ckpt/img/table.h>

#include <algorithm>

namespace ckpt::img {

Expected<std::vector<TreeRecord>> check_tree_layout(const ImageReader &image) {
  const NoteRef *note = image.find_ckpt(CkptNote::Tree);
  if (!note) return std::vector<TreeRecord>{};
  auto table = decode_table<TreeRecord>(note->desc);
  if (!table) return table.error().context("tree note at offset " + std::to_string(note->offset));
  const auto &ph = image.phdrs();
  // Embedded cores start after everything the root's own headers place
  // before them: PT_NOTE 0, the zero block and all PT_LOAD data...
  u64 data_end = 0;
  for (size_t i = 0; i + 1 < ph.size(); i++)
    if (ph[i].p_type == PT_NOTE || ph[i].p_type == PT_LOAD) data_end = std::max(data_end, ph[i].p_offset + ph[i].p_filesz);
  // ...and end before the PN_XNUM section header or the integrity note.
  u64 limit = ph.back().p_offset;
  if (image.ehdr().e_phnum == kPnXnum && image.ehdr().e_shoff) limit = std::min<u64>(limit, image.ehdr().e_shoff);
  u64 prev_end = data_end;
  for (size_t i = 0; i < table->records.size(); i++) {
    const TreeRecord &r = table->records[i];
    auto bad = [&](const char *what) {
      return make_error("tree record %zu (pid %d): embedded core at offset %llu, %llu bytes: %s", i, r.pid,
                        (unsigned long long)r.offset, (unsigned long long)r.size, what);
    };
    if (r.flags & kTreeZombie) {
      if (r.offset || r.size) return bad("a zombie has no embedded core");
      continue;
    }
    if (r.offset % kPageSize) return bad("not page-aligned");
    if (r.size < sizeof(Elf64_Ehdr)) return bad("too small for an ELF header");
    if (r.offset < prev_end) return bad("overlaps the root's data or the core before it");
    if (r.offset > limit || r.size > limit - r.offset)
      return bad("runs past the root's section header or integrity note");
    prev_end = r.offset + r.size;
  }
  return std::move(table->records);
}

}  // namespace ckpt::img
