// Segment checksums while the restorer reads (fill_checks.h).
#include "fill_checks.h"

#include <algorithm>

#include <ckpt/img/table.h>

namespace ckpt::reader {

using namespace img;

namespace {

// The core's Segment records by offset and, in `zero_block`, its
// ZeroBlock record if it has one.
Expected<std::vector<IntegrityRecord>> segment_records(const ImageReader &image,
                                                       std::vector<IntegrityRecord> &zero_block) {
  const NoteRef *note = image.find_ckpt(CkptNote::Integrity);
  if (!note) return make_error("no integrity note: not a ckpt image, or its end is missing");
  auto table = decode_table<IntegrityRecord>(note->desc);
  if (!table) return table.error().context("integrity note");
  std::vector<IntegrityRecord> out;
  for (const IntegrityRecord &r : table->records)
    if (static_cast<IntegrityKind>(r.kind) == IntegrityKind::Segment) out.push_back(r);
    else if (static_cast<IntegrityKind>(r.kind) == IntegrityKind::ZeroBlock) zero_block.push_back(r);
  std::sort(out.begin(), out.end(), [](const IntegrityRecord &a, const IntegrityRecord &b) { return a.offset < b.offset; });
  return out;
}

}  // namespace

Expected<FillChecks> plan_fill_checks(const ImageReader &image, const rs_fill *fills, size_t nfill) {
  std::vector<IntegrityRecord> zero_block;
  auto segments = segment_records(image, zero_block);
  if (!segments) return segments.error();
  const u64 base = image.base_offset();
  const size_t n = segments->size();
  // Per segment: how far the fills have read it in order, and whether
  // that run was broken (a gap, a fill reaching past its end, another
  // segment's fill in between, a second visit).
  std::vector<u64> read_to(n, 0);
  std::vector<bool> broken(n, false);
  std::vector<size_t> fill_segment(nfill, SIZE_MAX);
  size_t current = SIZE_MAX;  // the segment the previous fill was part of
  for (size_t i = 0; i < nfill; i++) {
    const rs_fill &f = fills[i];
    // The segment whose bytes hold the fill's first byte, if any of this core.
    auto it = std::upper_bound(segments->begin(), segments->end(), f.file_offset,
                               [&](u64 off, const IntegrityRecord &r) { return off < base + r.offset; });
    size_t k = SIZE_MAX;
    if (it != segments->begin()) {
      size_t c = static_cast<size_t>(it - segments->begin()) - 1;
      if (f.file_offset < base + (*segments)[c].offset + (*segments)[c].size) k = c;
    }
    if (current != SIZE_MAX && current != k && read_to[current] != (*segments)[current].size) broken[current] = true;
    current = k;
    if (k == SIZE_MAX) continue;
    const IntegrityRecord &r = (*segments)[k];
    if (f.file_offset != base + r.offset + read_to[k] || f.len > r.size - read_to[k] || read_to[k] == r.size)
      broken[k] = true;
    else
      read_to[k] += f.len;
    fill_segment[i] = k;
  }
  FillChecks out;
  out.fill_check.assign(nfill, 0);
  // The zero block: no restore reads it (zero segments are made, not
  // read), but an eager restore refused it damaged before and still does,
  // as verify words it; checked first, where verify checks it.
  out.before = zero_block;
  std::vector<u32> check_of(n, 0);
  for (size_t k = 0; k < n; k++) {
    const IntegrityRecord &r = (*segments)[k];
    if (broken[k] || read_to[k] != r.size) {
      out.before.push_back(r);
      continue;
    }
    rs_check c{};
    c.file_offset = base + r.offset;
    c.size = r.size;
    c.xxh3 = r.xxh3;
    c.core_offset = r.offset;
    c.phdr = r.index;
    out.checks.push_back(c);
    check_of[k] = static_cast<u32>(out.checks.size());
  }
  for (size_t i = 0; i < nfill; i++)
    if (fill_segment[i] != SIZE_MAX) out.fill_check[i] = check_of[fill_segment[i]];
  return out;
}

std::string checksum_context(const ImageReader &image, const CkptView &view) {
  if (image.base_offset() == 0) return "";
  return "process " + std::to_string(view.tasks.records[0].pid) + " (embedded core at offset " +
         std::to_string(image.base_offset()) + "): ";
}

Status check_segments_now(const ImageReader &image, const CkptView &view, const std::vector<IntegrityRecord> &segments) {
  Status s = check_regions(image, segments);
  if (!s) return Error(checksum_context(image, view) + s.error().message());
  return s;
}

}  // namespace ckpt::reader
