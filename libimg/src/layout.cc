// plan_layout(): where every byte of an image goes (FORMAT.md §2, §9):
// the ELF header, program headers, notes, the integrity note's size, and
// each segment's file offset, aligned, or left a hole.
#include <ckpt/img/writer.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <elf.h>

#include <ckpt/img/assert.h>
#include <ckpt/img/exec_form.h>
#include <ckpt/img/table.h>

#include "cow_pages.h"
#include "zero_hash.h"

namespace ckpt::img {

static u64 align_up(u64 v, u64 a) { return (v + a - 1) & ~(a - 1); }



static u64 integrity_desc_size(size_t notes, size_t loads_with_data, bool zero_block) {
  // Headers + one per note + [ZeroBlock] + one per stored segment + Prefix
  // + SelfCheck.
  return sizeof(TableHeader) + (notes + loads_with_data + 3 + zero_block) * sizeof(IntegrityRecord);
}

static const Note kIntegrityShape{kOwnerCkpt, static_cast<u32>(CkptNote::Integrity), {}};

Expected<ImageLayout> plan_layout(const std::vector<Note> &notes, const std::vector<SegmentPlan> &segments) {
  return plan_layout(notes, segments, {});
}

Expected<ImageLayout> plan_layout(const std::vector<Note> &notes, const std::vector<SegmentPlan> &segments,
                                  const std::vector<u64> &embedded_sizes) {
  ImageLayout l;
  u64 phnum = segments.size() + 2;
  if (phnum > UINT32_MAX) return make_error("%zu segments are more than ELF can count", segments.size());
  l.phnum = static_cast<u32>(phnum);
  l.phdr_offset = kPhdrOffset;  // 64..127 stay zero for the exec form (§12.3)
  l.notes_offset = l.phdr_offset + phnum * sizeof(Elf64_Phdr);
  for (const Note &n : notes) {
    if (n.desc.size() > UINT32_MAX) return make_error("note of type 0x%x is larger than 4 GiB", n.type);
    l.notes_size += n.encoded_size();
  }
  u64 pos = align_up(l.notes_offset + l.notes_size, kPageSize);
  for (const SegmentPlan &s : segments)
    if (s.zero) {
      if (s.filesz != s.memsz) return make_error("zero segment at 0x%llx has filesz != memsz", (unsigned long long)s.vaddr);
      l.zero_block_size = std::max(l.zero_block_size, align_up(s.filesz, kPageSize));
    }
  if (l.zero_block_size) {
    l.zero_block_offset = pos;
    pos += l.zero_block_size;
  }
  size_t stored = 0;
  u64 prev_end = 0;
  for (size_t i = 0; i < segments.size(); i++) {
    const SegmentPlan &s = segments[i];
    if (s.filesz > s.memsz)
      return make_error("segment %zu at 0x%llx has filesz %llu > memsz %llu", i, (unsigned long long)s.vaddr,
                        (unsigned long long)s.filesz, (unsigned long long)s.memsz);
    if (s.vaddr % kPageSize || s.memsz == 0)
      return make_error("segment %zu at 0x%llx is not a page-aligned, non-empty range", i, (unsigned long long)s.vaddr);
    if (s.vaddr + s.memsz < s.vaddr)
      return make_error("segment %zu at 0x%llx wraps around the address space", i, (unsigned long long)s.vaddr);
    if (i > 0 && s.vaddr < prev_end)
      return make_error("segment %zu at 0x%llx overlaps or precedes the segment before it", i,
                        (unsigned long long)s.vaddr);
    prev_end = s.vaddr + s.memsz;
    if (s.zero) {
      l.segment_offsets.push_back(l.zero_block_offset);
      continue;
    }
    l.segment_offsets.push_back(pos);
    if (s.filesz) {
      stored++;
      pos = align_up(pos + s.filesz, kPageSize);
    }
  }
  // Embedded cores of a tree image: after the last PT_LOAD data, each on
  // a page boundary of its own (§12.1).
  for (u64 size : embedded_sizes) {
    if (size < sizeof(Elf64_Ehdr)) return make_error("embedded core of %llu bytes is too small", (unsigned long long)size);
    pos = align_up(pos, kPageSize);
    l.embedded_offsets.push_back(pos);
    l.embedded_sizes.push_back(size);
    pos += size;
  }
  if (phnum >= kPnXnum) {
    l.shdr_offset = align_up(pos, 8);
    pos = l.shdr_offset + sizeof(Elf64_Shdr);
  }
  l.integrity_offset = align_up(pos, 4);
  Note shape = kIntegrityShape;
  shape.desc.resize(integrity_desc_size(notes.size(), stored, l.zero_block_size != 0));
  l.integrity_size = shape.encoded_size();
  l.total_size = l.integrity_offset + l.integrity_size;
  return l;
}

Expected<ImageWriter> ImageWriter::create(std::vector<Note> notes, std::vector<SegmentPlan> segments,
                                          Options options) {
  auto layout = plan_layout(notes, segments);
  if (!layout) return layout.error();
  ImageWriter w;
  w.notes_ = std::move(notes);
  w.segments_ = std::move(segments);
  w.options_ = options;
  w.layout_ = layout.take();
  w.prefix_hash_ = XXH3_createState();
  w.seg_hash_ = XXH3_createState();
  if (!w.prefix_hash_ || !w.seg_hash_) return make_error("out of memory for checksum state");
  XXH3_64bits_reset(w.prefix_hash_);
  return w;
}

Expected<ImageWriter> ImageWriter::create_tree(std::vector<Note> notes, std::vector<SegmentPlan> segments,
                                               std::vector<EmbeddedCorePlan> embedded, Options options) {
  std::vector<ImageWriter> parts;
  std::vector<u64> sizes;
  for (size_t i = 0; i < embedded.size(); i++) {
    Options part_options = options;
    part_options.direct_io = false;  // the root's output does the writing
    part_options.exec_launcher = {};  // the exec form is the whole file's, never an embedded core's (§12.3)
    auto part = create(std::move(embedded[i].notes), std::move(embedded[i].segments), part_options);
    if (!part) return part.error().context("embedded core " + std::to_string(i));
    for (const Note &n : part->notes_)
      if (n.owner == kOwnerCkpt && n.type == static_cast<u32>(CkptNote::Tree))
        return make_error("embedded core %zu has a Tree note of its own", i);
    sizes.push_back(part->layout_.total_size);
    parts.push_back(std::move(*part));
  }
  auto layout = plan_layout(notes, segments, sizes);
  if (!layout) return layout.error();
  // Fill in the Tree records' offset and size: only u64 fields of existing
  // records change, so the note keeps the size the layout was planned with.
  Note *tree = nullptr;
  for (Note &n : notes)
    if (n.owner == kOwnerCkpt && n.type == static_cast<u32>(CkptNote::Tree)) tree = &n;
  if (!tree) return make_error("a tree image needs a Tree note");
  auto raw = parse_table(tree->desc);
  if (!raw) return raw.error().context("tree note");
  if (raw->header.record_size < sizeof(TreeRecord))
    return make_error("tree note records of %u bytes are shorter than %zu", raw->header.record_size, sizeof(TreeRecord));
  size_t records_at = raw->records.data() - tree->desc.data();
  size_t part = 0;
  for (u32 i = 0; i < raw->header.record_count; i++) {
    u8 *rec = tree->desc.data() + records_at + size_t(i) * raw->header.record_size;
    TreeRecord r;
    std::memcpy(&r, rec, sizeof r);
    u64 offset = 0, size = 0;
    if (!(r.flags & kTreeZombie)) {
      if (part == parts.size()) return make_error("tree record %u (pid %d) has no embedded core planned", i, r.pid);
      offset = layout->embedded_offsets[part];
      size = layout->embedded_sizes[part];
      part++;
    }
    std::memcpy(rec + offsetof(TreeRecord, offset), &offset, 8);
    std::memcpy(rec + offsetof(TreeRecord, size), &size, 8);
  }
  if (part != parts.size())
    return make_error("%zu embedded cores planned but the tree note names %zu live processes", parts.size(), part);
  // Memory stored once (CowPages, §9.23): now that every core's place is
  // known, the references become file offsets.
  auto ident = decode_table<IdentityRecord>([&]() -> std::span<const u8> {
    for (const Note &n : notes)
      if (n.owner == kOwnerCkpt && n.type == static_cast<u32>(CkptNote::Identity)) return n.desc;
    return {};
  }());
  if (!ident || ident->records.empty()) return make_error("a tree image's root needs an Identity note");
  std::vector<PlannedCore> cores{{ident->records[0].root_pid, &segments, &*layout, 0, &notes}};
  part = 0;
  for (u32 i = 0; i < raw->header.record_count; i++) {
    TreeRecord r;
    std::memcpy(&r, tree->desc.data() + records_at + size_t(i) * raw->header.record_size, sizeof r);
    if (r.flags & kTreeZombie) continue;
    cores.push_back({r.pid, &parts[part].segments_, &parts[part].layout_, layout->embedded_offsets[part],
                     &parts[part].notes_});
    part++;
  }
  CKPT_TRY(resolve_cow_pages(cores));
  auto w = create(std::move(notes), std::move(segments), options);
  if (!w) return w.error();
  w->layout_ = layout.take();
  w->embedded_ = std::move(parts);
  return w;
}

ImageWriter::ImageWriter(ImageWriter &&o) noexcept
    : notes_(std::move(o.notes_)), segments_(std::move(o.segments_)), options_(o.options_),
      layout_(std::move(o.layout_)), fd_(o.fd_), pos_(o.pos_), seg_(o.seg_), seg_done_(o.seg_done_),
      buffer_(std::move(o.buffer_)), prefix_hash_(o.prefix_hash_), seg_hash_(o.seg_hash_),
      checks_(std::move(o.checks_)), began_(o.began_), seekable_(o.seekable_), direct_fd_(o.direct_fd_),
      writeback_started_(o.writeback_started_), writeback_waited_(o.writeback_waited_),
      exec_launcher_(std::move(o.exec_launcher_)), exec_launcher_offset_(o.exec_launcher_offset_),
      embedded_(std::move(o.embedded_)), embedded_next_(o.embedded_next_), outer_(o.outer_),
      finished_(o.finished_) {
  o.direct_fd_ = -1;
  o.prefix_hash_ = nullptr;
  o.seg_hash_ = nullptr;
}

}  // namespace ckpt::img
