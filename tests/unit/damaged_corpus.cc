#include "damaged_corpus.h"
#include "damaged_corpus_maker.h"
#include "hash_outside.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <set>
#include <sys/mman.h>
#include <sys/mman.h>
#include <unistd.h>

#include <elf.h>
#include <xxhash.h>

#include <ckpt/img/reader.h>
#include <ckpt/img/table.h>
#include <ckpt/img/writer.h>

namespace ckpt::test {

using namespace img;
using corpus::get;
using corpus::put;

const char *kind_name(DamageKind k) {
  switch (k) {
    case DamageKind::Truncated: return "truncated";
    case DamageKind::Flipped: return "flipped";
    case DamageKind::Absurd: return "absurd";
    case DamageKind::Semantic: return "semantic";
    case DamageKind::Xnum: return "xnum";
  }
  return "?";
}

SyntheticImage corpus_base_image(const SyntheticOptions &o) {
  SyntheticImage im = make_synthetic(o);
  // make_synthetic has no NT_FILE; the corpus wants one to damage.
  im.notes.files = {{0x10000000, 0x10001000, 0, "/usr/bin/synthetic"},
                    {0x10001000, 0x10002000, 0x1000, "/usr/bin/synthetic"}};
  // Nor a zero segment (the shared zero block): add one after the regular
  // mappings, before any extra (PN_XNUM) ones.
  const u64 at = 0x20000000;
  SegmentPlan zero{at, 0x2000, 0x2000, PF_R | PF_W};
  zero.zero = true;
  size_t index = static_cast<size_t>(o.segments);
  im.segments.insert(im.segments.begin() + index, zero);
  im.segment_data.insert(im.segment_data.begin() + index, std::vector<uint8_t>());
  VmaRecord v{};
  v.start = at;
  v.end = at + 0x2000;
  v.prot = PROT_READ | PROT_WRITE;
  v.kind = static_cast<u32>(VmaKind::Anon);
  v.pid = o.pid;
  v.first_range = static_cast<u32>(im.notes.ranges.records.size());
  v.range_count = 1;
  im.notes.vmas.add(v);
  im.notes.ranges.add({at, 0x2000, static_cast<u32>(PageSource::Image), ImageLayout::phdr_index_of_segment(index)});
  return im;
}

namespace corpus {

bool map_image(const std::vector<u8> &bytes, Map &m) {
  auto r = ImageReader::from_bytes(bytes);
  if (!r) return false;
  m.ph = r->phdrs();
  const u8 *base = r->bytes().data();
  for (const NoteRef &n : r->notes())
    m.notes.push_back({std::string(n.owner), n.type, n.offset, static_cast<u64>(n.desc.data() - base),
                       n.desc.size(), n.size, n.phdr});
  m.integrity_offset = m.ph.back().p_offset;
  m.integrity_size = m.ph.back().p_filesz;
  m.size = bytes.size();
  return true;
}

void Maker::emit(DamageKind kind, std::string name, std::string expect, std::vector<u8> bytes, bool resealed) {
  v.kind = kind;
  v.expect = std::move(expect);
  v.name = std::string(kind_name(kind)) + "-" + name + (resealed ? "-resealed" : "");
  v.resealed = resealed;
  v.bytes = std::move(bytes);
  visit(v);
}

void Maker::patched(const std::string &name, const std::string &expect,
                    const std::function<void(std::vector<u8> &)> &patch, bool also_resealed) {
  std::vector<u8> b = base;
  patch(b);
  if (b == base) return;
  emit(DamageKind::Absurd, name, expect + "|checksum mismatch", b);
  if (also_resealed && reseal(b, m.integrity_offset)) emit(DamageKind::Absurd, name, expect, std::move(b), true);
}

namespace {

void truncated_and_flipped_variants(Maker &k) {
  const CorpusOptions &o = k.o;
  const Map &m = k.m;
  const std::vector<u8> &base = k.base;
  const size_t phnum = k.phnum;
  const u64 notes_off = k.notes_off, notes_end = k.notes_end;
  auto emit = [&k](auto &&...args) { k.emit(std::forward<decltype(args)>(args)...); };

  // ---- Truncations -------------------------------------------------------
  std::set<u64> cuts = {0, 1, 63, 64, kPhdrOffset - 1, kPhdrOffset, kPhdrOffset + 56,
                        notes_off - 1, notes_off, notes_off + 1, notes_off + 12,
                        notes_off + (notes_end - notes_off) / 2, notes_end - 1, notes_end,
                        m.integrity_offset, m.integrity_offset + 1, m.integrity_offset + 20,
                        m.integrity_offset + m.integrity_size / 2, m.size - 8, m.size - 1};
  for (const auto &n : m.notes) cuts.insert(n.offset);
  for (size_t i = 1; i + 1 < phnum; i++) {
    cuts.insert(m.ph[i].p_offset);
    cuts.insert(m.ph[i].p_offset + 1);
    cuts.insert(m.ph[i].p_offset + m.ph[i].p_filesz - 1);
    cuts.insert(m.ph[i].p_offset + m.ph[i].p_filesz);
  }
  for (u64 c : cuts)
    if (c < m.size)
      emit(DamageKind::Truncated, "at-" + std::to_string(c),
           std::to_string(c) + "-byte file|file of " + std::to_string(c) + " bytes" +
               (c == 0 ? "|empty file" : ""),  // ImageReader::open's word for it
           std::vector<u8>(base.begin(), base.begin() + c));

  // ---- Single flipped bytes -----------------------------------------------
  auto flip = [&](u64 off, u8 mask) {
    std::vector<u8> b = base;
    b[off] ^= mask;
    char name[64];
    std::snprintf(name, sizeof name, "at-%llu-x%02x", (unsigned long long)off, mask);
    k.v.damaged_at = off;
    // Bytes of memory and padding are covered by checksums alone; a header
    // or note byte may first fail a structural check.
    k.v.checksum_only = off >= notes_end && off < m.integrity_offset;
    emit(DamageKind::Flipped, name, "", std::move(b));
  };
  std::set<u64> flips;
  auto dense = [&](u64 from, u64 to) {
    for (u64 i = from; i < to && i < m.size; i += o.every_flip ? 1 : 7) flips.insert(i);
  };
  dense(0, notes_end);                         // ELF header, program headers, notes
  dense(m.integrity_offset, m.size);           // the integrity note
  for (u64 i = notes_end; i < m.integrity_offset; i += o.data_stride) flips.insert(i);  // data and padding
  // The edges of every padding region and segment.
  flips.insert(notes_end);
  for (size_t i = 1; i + 1 < phnum; i++) {
    flips.insert(m.ph[i].p_offset);
    if (m.ph[i].p_offset) flips.insert(m.ph[i].p_offset - 1);
    flips.insert(m.ph[i].p_offset + m.ph[i].p_filesz - 1);
    flips.insert(m.ph[i].p_offset + m.ph[i].p_filesz);
  }
  flips.insert(m.integrity_offset - 1);
  for (u64 off : flips)
    if (off < m.size) flip(off, 0xff);
  // Single-bit flips in the headers, where a bit means most.
  for (u64 off = 0; off < notes_off; off += o.every_flip ? 1 : 5) flip(off, 0x01);
}

}  // namespace
}  // namespace corpus


bool reseal(std::vector<u8> &bytes, u64 integrity_offset) {
  // Note header (12) + "CKPT\0" padded to 8, then the table.
  u64 desc = integrity_offset + 20;
  if (desc + sizeof(TableHeader) > bytes.size()) return false;
  if (std::memcmp(bytes.data() + integrity_offset + 12, "CKPT", 5) != 0) return false;
  TableHeader h = get<TableHeader>(bytes, desc);
  if (h.record_size != sizeof(IntegrityRecord) || h.record_count == 0) return false;
  u64 recs = desc + h.header_size;
  if (recs + u64(h.record_count) * sizeof(IntegrityRecord) > bytes.size()) return false;
  // A Prefix of index 1 (format minor 7, FORMAT.md §10.2) hashes what no
  // Segment record and no embedded core (as the Tree note places them,
  // where it can be read) covers.
  std::vector<std::pair<u64, u64>> segments;
  if (auto image = ImageReader::from_bytes(bytes)) {
    if (auto tree = check_tree_layout(*image))
      for (const TreeRecord &t : *tree)
        if (!(t.flags & kTreeZombie) && t.size) segments.push_back({t.offset, t.offset + t.size});
  }
  for (u32 i = 0; i + 1 < h.record_count; i++) {
    IntegrityRecord r = get<IntegrityRecord>(bytes, recs + u64(i) * sizeof(IntegrityRecord));
    if (r.kind == static_cast<u32>(IntegrityKind::Segment) && r.offset <= bytes.size() &&
        r.size <= bytes.size() - r.offset)
      segments.push_back({r.offset, r.offset + r.size});
  }
  for (u32 i = 0; i < h.record_count; i++) {
    u64 at = recs + u64(i) * sizeof(IntegrityRecord);
    IntegrityRecord r = get<IntegrityRecord>(bytes, at);
    if (i + 1 == h.record_count) break;  // SelfCheck last
    if (r.offset > bytes.size() || r.size > bytes.size() - r.offset) continue;
    if (r.kind == static_cast<u32>(IntegrityKind::Prefix) && r.index == 1) {
      r.xxh3 = test::xxh3_outside(bytes, r.offset, r.offset + r.size, segments);
    } else {
      r.xxh3 = XXH3_64bits(bytes.data() + r.offset, r.size);
    }
    put(bytes, at, r);
  }
  u64 at = recs + u64(h.record_count - 1) * sizeof(IntegrityRecord);
  IntegrityRecord self = get<IntegrityRecord>(bytes, at);
  if (self.offset != integrity_offset || self.offset + self.size > bytes.size()) return false;
  self.xxh3 = XXH3_64bits(bytes.data() + self.offset, self.size);
  put(bytes, at, self);
  return true;
}

// The byte range a "checksum mismatch" error names: "(bytes A..B)",
// "between offsets A and B", or "the integrity note at offset A" (to the end).
static bool checksum_range(const std::string &error, u64 &from, u64 &to) {
  unsigned long long a = 0, b = 0;
  size_t at;
  if ((at = error.find("(bytes ")) != std::string::npos && std::sscanf(error.c_str() + at, "(bytes %llu..%llu)", &a, &b) == 2) {
  } else if ((at = error.find("between offsets ")) != std::string::npos &&
             std::sscanf(error.c_str() + at, "between offsets %llu and %llu", &a, &b) == 2) {
  } else if ((at = error.find("integrity note at offset ")) != std::string::npos &&
             std::sscanf(error.c_str() + at, "integrity note at offset %llu", &a) == 1) {
    b = ~0ull;
  } else {
    return false;
  }
  from = a;
  to = b;
  return true;
}

CorpusOptions seed_corpus_options() {
  CorpusOptions o;
  o.base.threads = 1;
  o.base.segments = 1;  // plus the zero segment: enough PT_LOADs for every load variant
  o.every_flip = false;
  o.xnum = false;  // PN_XNUM images are 3.7 MB: too big to commit
  return o;
}

std::string refusal_mismatch(const Variant &v, const std::string &error) {
  if (v.kind == DamageKind::Flipped) {
    if (error.find("checksum mismatch") == std::string::npos)
      return v.checksum_only ? "a flipped byte of memory or padding was refused without a checksum mismatch: " + error
                             : "";
    u64 from, to;
    if (!checksum_range(error, from, to)) return "a checksum mismatch that names no byte range: " + error;
    if (v.damaged_at < from || v.damaged_at >= to)
      return "the checksum mismatch names bytes " + std::to_string(from) + ".." + std::to_string(to) +
             ", which do not hold the flipped byte " + std::to_string(v.damaged_at) + ": " + error;
    return "";
  }
  size_t start = 0;
  while (start <= v.expect.size()) {
    size_t bar = v.expect.find('|', start);
    std::string alt = v.expect.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    if (!alt.empty() && error.find(alt) != std::string::npos) return "";
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return "refused, but not for its damage (want \"" + v.expect + "\"): " + error;
}

void for_each_variant(const CorpusOptions &o, const std::function<void(const Variant &)> &visit) {
  SyntheticImage im = corpus_base_image(o.base);
  std::vector<u8> base = encode_image(im);
  corpus::Map m;
  if (base.empty() || !corpus::map_image(base, m)) return;  // the test checks the base separately
  const size_t phnum = m.ph.size();
  const u64 notes_off = m.ph[0].p_offset, notes_end = notes_off + m.ph[0].p_filesz;

  corpus::Maker k{o, im, base, m, visit, phnum, notes_off, notes_end, {}};
  corpus::truncated_and_flipped_variants(k);
  corpus::absurd_variants(k);
  corpus::semantic_variants(k);
  corpus::tree_variants(k);
  if (o.xnum) corpus::xnum_variants(k);
}

}  // namespace ckpt::test
