// verify_integrity: the checksums of the CKPT Integrity note, and the
// requirement that they cover the whole file, so a flipped byte anywhere is
// found and named.
#include <ckpt/img/reader.h>
#include <ckpt/img/table.h>

#include <algorithm>
#include <system_error>
#include <thread>

#include <xxhash.h>

#include "prefix_rule.h"
#include "wide_xxh3.h"
#include "zero_hash.h"

namespace ckpt::img {

static const char *kind_name(u32 kind) {
  switch (static_cast<IntegrityKind>(kind)) {
    case IntegrityKind::Headers: return "ELF and program headers";
    case IntegrityKind::Note: return "note";
    case IntegrityKind::Segment: return "segment";
    case IntegrityKind::Prefix: return "file";
    case IntegrityKind::SelfCheck: return "integrity note";
    case IntegrityKind::ZeroBlock: return "zero block";
  }
  return "region";
}

namespace {

Error checksum_mismatch(const IntegrityRecord &r) {
  return make_error("checksum mismatch in %s %u (bytes %llu..%llu)", kind_name(r.kind), r.index,
                    (unsigned long long)r.offset, (unsigned long long)(r.offset + r.size));
}

// One streamed pass over the file for the two checksums that cover stored
// memory: each Segment's own and the Prefix. The file is taken in chunks,
// in order; the next chunk is read ahead and the ones passed are dropped
// from the mapping: the resident set stays a few chunks, not the image.
// Before minor 7 (Prefix index 0) the Prefix hashes the segments' bytes
// again: a second thread hashes a chunk for it while this one hashes the
// segments' parts, so on two cores the pass costs one checksum's time.
// Since minor 7 (kPrefixOutsideCovered) it hashes only what lies outside
// the segments and the embedded cores (`skipped`, sorted, disjoint): each
// byte once.
// Stored bytes are hashed on the CPU's widest vector unit (decision 214).
constexpr u64 kChunk = 32ull << 20;

struct RunningSegment {
  const IntegrityRecord *rec;
  XXH3_state_t *state;
};

struct Range {
  u64 offset, size;
};

// Feeds [at, end) less the skipped ranges to the Prefix state; `next` is
// the first skipped range that may still reach past `at`.
void hash_outside(XXH3_state_t *state, const u8 *data, u64 at, u64 end, const std::vector<Range> &skipped,
                  size_t &next) {
  while (at < end) {
    while (next < skipped.size() && skipped[next].offset + skipped[next].size <= at) next++;
    u64 stop = end;
    if (next < skipped.size()) stop = std::min(end, std::max(at, skipped[next].offset));
    if (at < stop) xxh3_update_wide(state, data + at, stop - at);
    at = stop;
    if (at < end && next < skipped.size()) at = std::min(end, skipped[next].offset + skipped[next].size);
  }
}

// A Prefix mismatch is left to the caller (*prefix_ok): a region's own
// checksum, found later, says better where the damage is.
Status check_memory_regions(const ImageReader &image, const std::vector<IntegrityRecord> &recs, u64 prefix_size,
                            const std::vector<Range> &cores, bool *prefix_ok) {
  const u8 *data = image.bytes().data();
  std::vector<const IntegrityRecord *> segments;
  const IntegrityRecord *prefix = nullptr;
  for (size_t i = 0; i + 1 < recs.size(); i++) {
    auto kind = static_cast<IntegrityKind>(recs[i].kind);
    if (kind == IntegrityKind::Segment) segments.push_back(&recs[i]);
    if (kind == IntegrityKind::Prefix) prefix = &recs[i];
  }
  if (!prefix) return make_error("integrity note has no whole-file checksum");
  std::stable_sort(segments.begin(), segments.end(),
                   [](const IntegrityRecord *a, const IntegrityRecord *b) { return a->offset < b->offset; });
  bool outside_only = prefix->index == kPrefixOutsideCovered;
  std::vector<Range> skipped;
  if (outside_only) {
    skipped = cores;
    for (const IntegrityRecord *r : segments) skipped.push_back({r->offset, r->size});
    std::sort(skipped.begin(), skipped.end(), [](const Range &a, const Range &b) { return a.offset < b.offset; });
    // Overlapping ranges (none written so far) are joined: each is
    // covered by its own checksum either way.
    std::vector<Range> joined;
    for (const Range &r : skipped) {
      if (!joined.empty() && r.offset <= joined.back().offset + joined.back().size)
        joined.back().size = std::max(joined.back().size, r.offset + r.size - joined.back().offset);
      else
        joined.push_back(r);
    }
    skipped = std::move(joined);
  }
  size_t next_skipped = 0;
  // Memory is only ever dropped past the headers and notes (libelf may
  // have written to the headers' pages of the private mapping).
  u64 forget_from = segments.empty() ? prefix_size : segments.front()->offset;
  XXH3_state_t *prefix_state = XXH3_createState();
  if (!prefix_state) return make_error("out of memory for checksum state");
  XXH3_64bits_reset(prefix_state);
  std::vector<RunningSegment> running;
  auto free_all = [&] {
    XXH3_freeState(prefix_state);
    for (RunningSegment &r : running) XXH3_freeState(r.state);
  };
  // The layout check above placed every segment inside the file; the pass
  // runs to the end of the last one should it lie past the prefix.
  u64 total = prefix_size;
  for (const IntegrityRecord *r : segments) total = std::max(total, r->offset + r->size);
  size_t next = 0;
  image.will_need(0, kChunk);
  for (u64 at = 0; at < total; at += kChunk) {
    u64 end = std::min(total, at + kChunk);
    image.will_need(end, kChunk);
    auto hash_prefix = [&] {
      if (at >= prefix_size) return;
      if (outside_only)
        hash_outside(prefix_state, data, at, std::min(end, prefix_size), skipped, next_skipped);
      else
        xxh3_update_wide(prefix_state, data + at, std::min(end, prefix_size) - at);
    };
    std::thread helper;
    if (outside_only) {
      hash_prefix();  // little left to hash: not worth a thread
    } else {
      try {
        helper = std::thread(hash_prefix);
      } catch (const std::system_error &) {
        hash_prefix();  // no thread to be had: the same work, on this one
      }
    }
    while (next < segments.size() && segments[next]->offset < end) {
      XXH3_state_t *st = XXH3_createState();
      if (!st) {
        if (helper.joinable()) helper.join();
        free_all();
        return make_error("out of memory for checksum state");
      }
      XXH3_64bits_reset(st);
      running.push_back({segments[next++], st});
    }
    const IntegrityRecord *bad = nullptr;
    for (size_t i = 0; i < running.size();) {
      const IntegrityRecord &r = *running[i].rec;
      u64 a = std::max(at, r.offset), b = std::min(end, r.offset + r.size);
      if (a < b) xxh3_update_wide(running[i].state, data + a, b - a);
      if (r.offset + r.size <= end) {
        if (!bad && XXH3_64bits_digest(running[i].state) != r.xxh3) bad = &r;
        XXH3_freeState(running[i].state);
        running.erase(running.begin() + i);
      } else {
        i++;
      }
    }
    if (helper.joinable()) helper.join();
    if (bad) {
      free_all();
      return checksum_mismatch(*bad);
    }
    if (at >= forget_from) image.forget_pages(at, end - at);
  }
  *prefix_ok = XXH3_64bits_digest(prefix_state) == prefix->xxh3;
  free_all();
  return {};
}

}  // namespace

Status check_regions(const ImageReader &image, const std::vector<IntegrityRecord> &regions) {
  constexpr u64 kSlice = 8ull << 20;
  const u8 *data = image.bytes().data();
  XXH3_state_t *state = XXH3_createState();
  if (!state) return make_error("out of memory for checksum state");
  for (const IntegrityRecord &r : regions) {
    auto kind = static_cast<IntegrityKind>(r.kind);
    // Only memory is dropped: libelf may have written to the headers'
    // pages of the private mapping, and notes stay in use.
    bool memory = kind == IntegrityKind::Segment || kind == IntegrityKind::ZeroBlock;
    XXH3_64bits_reset(state);
    for (u64 at = r.offset; at < r.offset + r.size; at += kSlice) {
      u64 n = std::min(kSlice, r.offset + r.size - at);
      if (memory) image.will_need(at + n, kSlice);
      xxh3_update_wide(state, data + at, n);
      if (memory) image.forget_pages(at, n);
    }
    if (XXH3_64bits_digest(state) != r.xxh3) {
      XXH3_freeState(state);
      return checksum_mismatch(r);
    }
  }
  XXH3_freeState(state);
  return {};
}

Status verify_integrity(const ImageReader &image, bool check_memory) {
  const auto &ph = image.phdrs();
  const NoteRef *note = image.find_ckpt(CkptNote::Integrity);
  if (!note) return make_error("no integrity note: not a ckpt image, or its end is missing");
  const Elf64_Phdr &last = ph.back();
  if (note->phdr != ph.size() - 1 || note->index != 0 || note->size != last.p_filesz)
    return make_error("the integrity note is not alone in the last PT_NOTE");
  if (note->offset + note->size != image.bytes().size())
    return make_error("file is %zu bytes but its integrity note ends at %llu", image.bytes().size(),
                      (unsigned long long)(note->offset + note->size));
  auto table = decode_table<IntegrityRecord>(note->desc);
  if (!table) return table.error().context("integrity note");
  const auto &recs = table->records;
  if (recs.empty() || recs.back().kind != static_cast<u32>(IntegrityKind::SelfCheck))
    return make_error("integrity note lacks its final self-check record");

  // The SelfCheck covers the note up to itself; check it first so that the
  // other records can be trusted.
  const IntegrityRecord &self = recs.back();
  u64 self_off = note->desc.data() - image.bytes().data() - note->offset + sizeof(TableHeader) +
                 (recs.size() - 1) * sizeof(IntegrityRecord);
  if (self.offset != note->offset || self.index != 0 || self.size != self_off || table->data.size() != 0 ||
      note->desc.size() != sizeof(TableHeader) + recs.size() * sizeof(IntegrityRecord))
    return make_error("integrity note at offset %llu is malformed", (unsigned long long)note->offset);
  if (XXH3_64bits(image.bytes().data() + note->offset, self_off) != self.xxh3)
    return make_error("checksum mismatch in the integrity note at offset %llu", (unsigned long long)note->offset);

  // Expected coverage: headers, every note of PT_NOTE 0, every stored
  // PT_LOAD, the prefix.
  std::vector<IntegrityRecord> want;
  // Only a PT_NOTE's (or PT_LOAD's) offset was checked against the file size.
  if (ph[0].p_type != PT_NOTE) return make_error("program header 0 is not the PT_NOTE the headers end at");
  u64 headers_end = ph[0].p_offset;
  want.push_back({static_cast<u32>(IntegrityKind::Headers), 0, 0, headers_end, 0});
  for (const NoteRef &n : image.notes())
    if (n.phdr == 0) want.push_back({static_cast<u32>(IntegrityKind::Note), n.index, n.offset, n.size, 0});
  // The zero block, if any, is the record after the notes; segments wholly
  // inside it are covered by it.
  u64 zb_off = 0, zb_size = 0;
  size_t at = want.size();
  if (at < recs.size() - 1 && recs[at].kind == static_cast<u32>(IntegrityKind::ZeroBlock)) {
    zb_off = recs[at].offset;
    zb_size = recs[at].size;
    if (zb_off % kPageSize || zb_off < ph[0].p_offset + ph[0].p_filesz || zb_size > note->offset ||
        zb_off > note->offset - zb_size)
      return make_error("integrity note places the zero block at an impossible offset %llu",
                        (unsigned long long)zb_off);
    // Only with the memory checks (verify): the record itself is covered
    // by the self-check above, so a mismatch here is a writer's mistake,
    // not damage, and hashing up to 8 MiB of zeros was ~0.8 ms of each
    // JVM warm start's checks; no restore reads the block (DECISIONS 246).
    if (check_memory && recs[at].xxh3 != zeros_xxh3(zb_size))
      return make_error("the zero block at offset %llu is declared with a checksum of non-zero bytes",
                        (unsigned long long)zb_off);
    want.push_back(recs[at]);
  }
  auto in_zero_block = [&](const Elf64_Phdr &p) {
    return zb_size && p.p_offset >= zb_off && p.p_filesz <= zb_size && p.p_offset - zb_off <= zb_size - p.p_filesz;
  };
  for (size_t i = 0; i < ph.size(); i++)
    if (ph[i].p_type == PT_LOAD && ph[i].p_filesz && !in_zero_block(ph[i]))
      want.push_back({static_cast<u32>(IntegrityKind::Segment), static_cast<u32>(i), ph[i].p_offset,
                      ph[i].p_filesz, 0});
  // The Prefix's index says which bytes it hashes (kPrefixOutsideCovered).
  u32 prefix_index = recs.size() >= 2 && recs[recs.size() - 2].index == kPrefixOutsideCovered ? kPrefixOutsideCovered : 0;
  want.push_back({static_cast<u32>(IntegrityKind::Prefix), prefix_index, 0, note->offset, 0});
  if (want.size() != recs.size() - 1)
    return make_error("integrity note lists %zu regions but the file has %zu", recs.size() - 1, want.size());
  for (size_t i = 0; i < want.size(); i++) {
    const IntegrityRecord &r = recs[i], &w = want[i];
    if (r.kind != w.kind || r.index != w.index || r.offset != w.offset || r.size != w.size)
      return make_error("integrity record %zu describes %s %u at offset %llu, but the file has %s %u at offset %llu",
                        i, kind_name(r.kind), r.index, (unsigned long long)r.offset, kind_name(w.kind), w.index,
                        (unsigned long long)w.offset);
  }
  // Region checks before the prefix: they say where the damage is.
  std::vector<IntegrityRecord> regions;
  for (size_t i = 0; i + 1 < recs.size(); i++) {
    auto kind = static_cast<IntegrityKind>(recs[i].kind);
    if (kind == IntegrityKind::Segment || kind == IntegrityKind::Prefix) continue;  // below, in one pass
    // The zero block is memory too (the zero pages of zero segments, which
    // no restore reads) and, on a regular file, a hole of up to 8 MiB that
    // reading through the mapping fills with page-cache pages: ~8 ms of a
    // JVM's lazy warm start, so a lazy restore skips it like the segments.
    if (!check_memory && kind == IntegrityKind::ZeroBlock) continue;
    regions.push_back(recs[i]);
  }
  CKPT_TRY(check_regions(image, regions));
  // A tree's root: since minor 7 its Prefix leaves out the embedded cores,
  // each covered whole by its own integrity note (checked below).
  std::vector<TreeRecord> tree_records;
  if (image.base_offset() == 0) {
    auto tree = check_tree_layout(image);
    if (!tree) return tree.error();
    tree_records = std::move(*tree);
  }
  bool prefix_ok = true;
  if (check_memory) {
    std::vector<Range> cores;
    for (const TreeRecord &r : tree_records)
      if (!(r.flags & kTreeZombie)) cores.push_back({r.offset, r.size});
    CKPT_TRY(check_memory_regions(image, recs, note->offset, cores, &prefix_ok));
  }
  auto prefix_mismatch = [&] {
    return make_error("checksum mismatch in padding between offsets 0 and %llu", (unsigned long long)note->offset);
  };
  // A tree image: each embedded core carries its own integrity note (the
  // root's Prefix covered their bytes only with check_memory, and since
  // minor 7 not at all). Offsets in errors are the core's own, as `imgtool
  // extract` would write it. Before minor 7 the root's Prefix covers the
  // cores too: a core's own mismatch is reported first, as the same damage
  // is when restore finds it (decision 174).
  if (image.base_offset() == 0) {
    for (const TreeRecord &r : tree_records) {
      if (r.flags & kTreeZombie) continue;
      auto core = image.embedded(r);
      if (!core) return core.error();
      Status s = verify_integrity(*core, check_memory);
      if (!s) return s.error().context("process " + std::to_string(r.pid) + " (embedded core at offset " +
                                       std::to_string(r.offset) + ")");
    }
  }
  if (!prefix_ok) return prefix_mismatch();
  return {};
}

}  // namespace ckpt::img
