// fuzz_image_reader: a whole image through everything a consumer calls.
//
//   ImageReader::from_bytes, then decode_core, decode_ckpt (and every string
//   and blob it references, and each note kind's and fd kind's own decoders:
//   kind_checks.h; for a tree image, the same for every embedded core),
//   verify_integrity, read_memory on addresses taken
//   from the PT_LOADs and page ranges, and reader::validate_one.
//
// A fuzzer cannot forge xxh3 checksums, so verify_integrity and the part of
// validate_one behind it would only ever see "checksum mismatch". Each
// accepted input is therefore also run a second time "resealed": a copy whose
// Integrity records have their checksums recomputed over whatever regions they
// name (those inside the file), so the structural checks behind the hashes get
// fuzzed too.
//
// Checked beyond "no crash": every note, owner and desc view lies inside the
// file and inside its PT_NOTE; stored PT_LOAD bytes read back through
// read_memory; bytes past p_filesz are refused; every Image page range of an
// accepted CKPT view reads back exactly its segment's bytes.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>
#include <ckpt/img/xstate.h>
#include <ckpt/reader/validate.h>

#include "fuzz_common.h"
#include "hash_outside.h"
#include "kind_checks.h"

using namespace ckpt;
using namespace ckpt::img;
using ckpt::fuzz::touch;
using ckpt::fuzz::within;

namespace {

// Bounds on the work done per input.
constexpr size_t kMaxLoadsRead = 16;
constexpr size_t kMaxRangesRead = 64;
constexpr u64 kMaxRead = 1 << 16;

void check_structure(const ImageReader &r) {
  const auto bytes = r.bytes();
  const auto &ph = r.phdrs();
  CKPT_FUZZ_CHECK(!ph.empty());
  for (size_t i = 0; i < ph.size(); i++) {
    if (ph[i].p_type != PT_LOAD && ph[i].p_type != PT_NOTE) continue;
    auto seg = r.segment_bytes(i);
    CKPT_FUZZ_CHECK(seg.size() == ph[i].p_filesz);
    CKPT_FUZZ_CHECK(within(seg.data(), seg.size(), bytes.data(), bytes.size()));
  }
  u32 prev_phdr = 0, next_index = 0;
  for (const NoteRef &n : r.notes()) {
    CKPT_FUZZ_CHECK(n.phdr < ph.size() && ph[n.phdr].p_type == PT_NOTE);
    if (n.phdr != prev_phdr) next_index = 0;
    CKPT_FUZZ_CHECK(n.phdr >= prev_phdr);
    CKPT_FUZZ_CHECK(n.index == next_index);
    prev_phdr = n.phdr;
    next_index++;
    const Elf64_Phdr &p = ph[n.phdr];
    CKPT_FUZZ_CHECK(n.offset >= p.p_offset && n.size <= p.p_filesz && n.offset - p.p_offset <= p.p_filesz - n.size);
    const u8 *note = bytes.data() + n.offset;
    if (!n.owner.empty()) CKPT_FUZZ_CHECK(within(n.owner.data(), n.owner.size(), note, n.size));
    if (!n.desc.empty()) CKPT_FUZZ_CHECK(within(n.desc.data(), n.desc.size(), note, n.size));
    touch(n.owner);
    touch(n.desc);
    CKPT_FUZZ_CHECK(r.find_note(n.owner, n.type) != nullptr);
  }
}

void check_memory(const ImageReader &r) {
  size_t loads = 0;
  for (const Elf64_Phdr &p : r.phdrs()) {
    if (p.p_type != PT_LOAD || loads++ >= kMaxLoadsRead) continue;
    if (p.p_filesz) {
      u64 n = std::min<u64>(p.p_filesz, kMaxRead);
      auto m = r.read_memory(p.p_vaddr, n);
      CKPT_FUZZ_CHECK(bool(m));
      CKPT_FUZZ_CHECK(m->size() == n && std::memcmp(m->data(), r.bytes().data() + p.p_offset, n) == 0);
      auto last = r.read_memory(p.p_vaddr + p.p_filesz - 1, 1);
      CKPT_FUZZ_CHECK(bool(last));
      CKPT_FUZZ_CHECK((*last)[0] == r.bytes()[p.p_offset + p.p_filesz - 1]);
    }
    if (p.p_memsz > p.p_filesz) {
      // Inside the segment but not stored in the file.
      CKPT_FUZZ_CHECK(!r.read_memory(p.p_vaddr + p.p_filesz, 1));
    }
    if (p.p_memsz) {
      // Across the end of the segment: whatever follows decides; it must
      // only not crash.
      auto across = r.read_memory(p.p_vaddr + p.p_memsz - 1, 2);
      if (across) CKPT_FUZZ_CHECK(across->size() == 2);
      (void)r.read_memory(p.p_vaddr + p.p_memsz, 1);
    }
  }
  (void)r.read_memory(0, 0);
  (void)r.read_memory(~u64(0), 1);
  (void)r.read_memory(~u64(0) - 7, 16);
}

void check_ckpt_view(const ImageReader &r, const CkptView &v) {
  // Every note kind's table (generated from the registry) and its kind's
  // decoders: fd states, armed ranges, SysV messages; the restore policy.
  fuzz::check_view(v);
  // decode_ckpt promises that consumers can index freely: every VMA's page
  // ranges exist and every Image range is stored in its PT_LOAD.
  const auto &ph = r.phdrs();
  size_t read = 0;
  for (const VmaRecord &m : v.vmas.records) {
    CKPT_FUZZ_CHECK(u64(m.first_range) + m.range_count <= v.ranges.records.size());
    for (u32 k = 0; k < m.range_count; k++) {
      const PageRangeRecord &pr = v.ranges.records[m.first_range + k];
      // Bytes an earlier core stores (§9.23): decode_ckpt checked they lie
      // in the file before this core, so reading them is safe.
      if (static_cast<PageSource>(pr.source) == PageSource::Earlier && read++ < kMaxRangesRead) {
        StoredRange s = stored_range(r, v, pr);
        CKPT_FUZZ_CHECK(s.bytes.size() == pr.length && s.file_offset + pr.length <= r.base_offset());
        volatile u8 sink = s.bytes.empty() ? 0 : s.bytes[s.bytes.size() - 1];
        (void)sink;
        continue;
      }
      if (static_cast<PageSource>(pr.source) != PageSource::Image || read++ >= kMaxRangesRead) continue;
      CKPT_FUZZ_CHECK(pr.segment < ph.size() && ph[pr.segment].p_type == PT_LOAD);
      const Elf64_Phdr &p = ph[pr.segment];
      u64 n = std::min<u64>(pr.length, kMaxRead);
      auto mem = r.read_memory(pr.start, n);
      CKPT_FUZZ_CHECK(bool(mem));
      CKPT_FUZZ_CHECK(std::memcmp(mem->data(), r.bytes().data() + p.p_offset + (pr.start - p.p_vaddr), n) == 0);
    }
  }
}

/// What restore does with a thread's NT_X86_XSTATE: from the image's
/// (Intel) layout to this CPU's, checked by converting back.
void check_xstate(std::span<const u8> area) {
  u64 xcr0 = 0;
  if (area.size() >= kXstateXcr0Offset + 8) std::memcpy(&xcr0, area.data() + kXstateXcr0Offset, 8);
  static const XsaveLayout cpu = cpu_xsave_layout();
  const XsaveLayout &intel = intel_xsave_layout();
  auto here = convert_xsave(area, xcr0, intel, cpu);
  if (!here) return;
  CKPT_FUZZ_CHECK(here->size() == xsave_size(cpu, xcr0));
  auto back = convert_xsave(*here, xcr0, cpu, intel);
  CKPT_FUZZ_CHECK(bool(back));
  CKPT_FUZZ_CHECK(back->size() == xsave_size(intel, xcr0));
  CKPT_FUZZ_CHECK(std::memcmp(back->data(), area.data(), 576) == 0);
  for (int i = 2; i < XsaveLayout::kComponents; i++) {
    if (!((xcr0 >> i) & 1) || !intel.size[i]) continue;
    CKPT_FUZZ_CHECK(std::memcmp(back->data() + intel.offset[i], area.data() + intel.offset[i], intel.size[i]) == 0);
  }
}

void check_core_view(const CoreView &c) {
  size_t xstates = 0;
  for (const CoreThread &t : c.threads) {
    touch(t.fpregs);
    touch(t.xstate);
    CKPT_FUZZ_CHECK(t.fpregs.empty() || t.fpregs.size() == kFpregsetSize);
    if (!t.xstate.empty() && xstates++ < 4) check_xstate(t.xstate);
  }
  touch(c.siginfo);
  CKPT_FUZZ_CHECK(c.auxv.size() % 2 == 0);
  for (const FileMapping &f : c.files) {
    CKPT_FUZZ_CHECK(f.start <= f.end);
    touch(f.path);
  }
}

/// Everything a consumer does with an opened image.
void exercise(const ImageReader &r) {
  // (Recursion is bounded: an embedded core has no Tree to follow.)
  check_structure(r);
  check_memory(r);
  auto core = decode_core(r);
  if (core) check_core_view(*core);
  // With a warning handler, as `imgtool info` calls it: each warning is
  // one line (a note of a kind this build does not know).
  auto view = decode_ckpt(r, [](const Error &e) {
    CKPT_FUZZ_CHECK(!e.message().empty() && e.message().find('\n') == std::string::npos);
  });
  if (view) check_ckpt_view(r, *view);
  // The writer's reader of a parent's dirty tracking (dump --parent).
  auto tracking = read_dirty_tracking(r);
  if (!tracking) CKPT_FUZZ_CHECK(!tracking.error().message().empty());
  else if (*tracking) {
    CKPT_FUZZ_CHECK((*tracking)->records.size() <= 1);
    fuzz::check_contents(**tracking);
  }
  // A tree image: each embedded core, one level only (its own Tree note is
  // refused), through the same checks as any image.
  if (view && r.base_offset() == 0)
    for (const TreeRecord &t : view->tree.records) {
      auto sub = r.embedded(t);
      if (!sub) continue;
      CKPT_FUZZ_CHECK(sub->bytes().data() >= r.bytes().data() &&
                      sub->bytes().data() + sub->bytes().size() <= r.bytes().data() + r.bytes().size());
      CKPT_FUZZ_CHECK(!sub->find_ckpt(CkptNote::Tree));
      exercise(*sub);
    }
  Status integrity = verify_integrity(r);
  CkptView validated;
  Status valid = reader::validate_one(r, &validated);
  if (valid) {
    // validate_one is the conjunction of the checks above and more.
    CKPT_FUZZ_CHECK(r.has_ckpt_marker());
    CKPT_FUZZ_CHECK(bool(integrity) && bool(core) && bool(view));
    CKPT_FUZZ_CHECK(!validated.tasks.records.empty() && !validated.vmas.records.empty());
    check_ckpt_view(r, validated);
  } else {
    CKPT_FUZZ_CHECK(!valid.error().message().empty());
  }
}

/// A copy of the image whose Integrity checksums are recomputed, or nothing
/// when the integrity note is not a plain table of IntegrityRecords.
std::optional<std::vector<u8>> reseal(const ImageReader &r) {
  const NoteRef *note = r.find_ckpt(CkptNote::Integrity);
  if (!note) return std::nullopt;
  auto raw = parse_table(note->desc);
  if (!raw || raw->header.header_size != sizeof(TableHeader) ||
      raw->header.record_size != sizeof(IntegrityRecord) || raw->header.record_count == 0)
    return std::nullopt;
  const auto bytes = r.bytes();
  std::vector<u8> out(bytes.begin(), bytes.end());
  const size_t recs_at = (note->desc.data() - bytes.data()) + sizeof(TableHeader);
  const u32 n = raw->header.record_count;
  auto fits = [&](u64 off, u64 len) { return off <= out.size() && len <= out.size() - off; };
  // A Prefix of index 1 (format minor 7, FORMAT.md §10.2) hashes only what
  // no Segment record and no embedded core covers.
  std::vector<std::pair<u64, u64>> covered;
  if (auto tree = check_tree_layout(r))
    for (const TreeRecord &t : *tree)
      if (!(t.flags & kTreeZombie) && fits(t.offset, t.size)) covered.push_back({t.offset, t.offset + t.size});
  for (u32 i = 0; i + 1 < n; i++) {
    IntegrityRecord rec;
    std::memcpy(&rec, out.data() + recs_at + size_t(i) * sizeof rec, sizeof rec);
    if (rec.kind == static_cast<u32>(IntegrityKind::Segment) && fits(rec.offset, rec.size))
      covered.push_back({rec.offset, rec.offset + rec.size});
  }
  for (u32 i = 0; i + 1 < n; i++) {
    IntegrityRecord rec;
    std::memcpy(&rec, out.data() + recs_at + size_t(i) * sizeof rec, sizeof rec);
    if (!fits(rec.offset, rec.size)) continue;
    if (rec.kind == static_cast<u32>(IntegrityKind::Prefix) && rec.index == 1)
      rec.xxh3 = test::xxh3_outside(out, rec.offset, rec.offset + rec.size, covered);
    else
      rec.xxh3 = XXH3_64bits(out.data() + rec.offset, rec.size);
    std::memcpy(out.data() + recs_at + size_t(i) * sizeof rec, &rec, sizeof rec);
  }
  IntegrityRecord self;
  const size_t self_at = recs_at + size_t(n - 1) * sizeof self;
  std::memcpy(&self, out.data() + self_at, sizeof self);
  if (self_at >= note->offset) self.xxh3 = XXH3_64bits(out.data() + note->offset, self_at - note->offset);
  std::memcpy(out.data() + self_at, &self, sizeof self);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto image = ImageReader::from_bytes({data, size});
  if (!image) {
    CKPT_FUZZ_CHECK(!image.error().message().empty());
    return 0;
  }
  CKPT_FUZZ_CHECK(image->bytes().size() == size);
  exercise(*image);

  if (auto sealed = reseal(*image)) {
    // Only checksum fields inside a note's desc changed: the structure is
    // the same, so the reader must accept the copy too.
    auto again = ImageReader::from_bytes(*sealed);
    CKPT_FUZZ_CHECK(bool(again));
    CKPT_FUZZ_CHECK(again->notes().size() == image->notes().size());
    exercise(*again);
  }
  return 0;
}
