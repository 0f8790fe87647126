// The damaged corpus: semantic damage with correct checksums, a lying process
// tree and lying PN_XNUM (damaged_corpus.h).
#include "damaged_corpus_maker.h"

#include <algorithm>
#include <cstddef>
#include <sys/mman.h>

#include <ckpt/img/reader.h>
#include <ckpt/img/table.h>

namespace ckpt::test::corpus {

void semantic_variants(Maker &k) {
  const SyntheticImage &im = k.im;
  auto emit = [&k](auto &&...args) { k.emit(std::forward<decltype(args)>(args)...); };
  // ---- Semantic damage, written with correct checksums ----------------------
  auto semantic = [&](const std::string &name, const std::string &expect,
                      const std::function<void(std::vector<Note> &, SyntheticImage &)> &f) {
    SyntheticImage copy = im;
    std::vector<Note> notes = copy.notes.encode();
    f(notes, copy);
    std::vector<u8> b = encode_with_notes(notes, copy);
    if (!b.empty()) emit(DamageKind::Semantic, name, expect, std::move(b));
  };
  auto find_note = [](std::vector<Note> &notes, const char *owner, u32 type) -> Note * {
    for (Note &n : notes)
      if (n.owner == owner && n.type == type) return &n;
    return nullptr;
  };
  auto retable = [&](std::vector<Note> &notes, CkptNote t, const std::vector<u8> &desc) {
    if (Note *n = find_note(notes, kOwnerCkpt, static_cast<u32>(t))) n->desc = desc;
  };
  semantic("identity-two-records", "identity note has 2 records, not 1", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.identity.add(s.notes.identity.records[0]);
    retable(notes, CkptNote::Identity, s.notes.identity.encode());
  });
  semantic("identity-zero-records", "identity note has 0 records, not 1", [&](std::vector<Note> &notes, SyntheticImage &) {
    // An empty table, header only (TableBuilder<>().encode() of an empty
    // builder trips a GCC 12 -Warray-bounds false positive).
    std::vector<u8> d(sizeof(TableHeader));
    TableHeader h{sizeof(TableHeader), 1, sizeof(IdentityRecord), 0, 0};
    std::memcpy(d.data(), &h, sizeof h);
    retable(notes, CkptNote::Identity, d);
  });
  semantic("identity-string-out-of-bounds", "identity record 0: string at data offset 1000", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.identity.records[0].hostname = {1000, 5};
    retable(notes, CkptNote::Identity, s.notes.identity.encode());
  });
  semantic("task-string-out-of-bounds", "task record 0: string at data offset 0, length 100000", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.tasks.records[0].comm.length = 100000;
    retable(notes, CkptNote::Tasks, s.notes.tasks.encode());
  });
  semantic("task-blob-out-of-bounds", "task record 0: blob at data offset 18446744073709551613", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.tasks.records[0].groups.offset = ~u64(0) - 2;
    retable(notes, CkptNote::Tasks, s.notes.tasks.encode());
  });
  semantic("thread-name-out-of-bounds", "string at data offset 4294967295", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.thread_records.records.back().comm.offset = 0xffffffffu;
    retable(notes, CkptNote::Threads, s.notes.thread_records.encode());
  });
  semantic("fd-path-out-of-bounds", "fd record 0: string at data offset 0, length 4294967295", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.fds.records[0].path.length = 0xffffffffu;
    retable(notes, CkptNote::Fds, s.notes.fds.encode());
  });
  semantic("pipe-blob-out-of-bounds", "pipe record 0: blob at data offset 0, length 1048576", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.pipes.records[0].data.length = 1u << 20;
    retable(notes, CkptNote::Pipes, s.notes.pipes.encode());
  });
  semantic("vma-unaligned", "VMA record 0 (0x10000001-0x10004000): not a page-aligned, non-empty range", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.vmas.records[0].start += 1;
    retable(notes, CkptNote::Vmas, s.notes.vmas.encode());
  });
  semantic("vma-empty", "not a page-aligned, non-empty range", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.vmas.records[0].end = s.notes.vmas.records[0].start;
    retable(notes, CkptNote::Vmas, s.notes.vmas.encode());
  });
  semantic("vma-ranges-out-of-bounds", "page ranges out of bounds", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.vmas.records.back().first_range = 0xfffffff0u;
    s.notes.vmas.records.back().range_count = 0x20;
    retable(notes, CkptNote::Vmas, s.notes.vmas.encode());
  });
  semantic("range-names-pt-note", "page range names no PT_LOAD", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.ranges.records[0].segment = 0;
    retable(notes, CkptNote::PageRanges, s.notes.ranges.encode());
  });
  semantic("range-segment-out-of-bounds", "page range names no PT_LOAD", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.ranges.records[0].segment = 1000000;
    retable(notes, CkptNote::PageRanges, s.notes.ranges.encode());
  });
  semantic("range-beyond-stored-bytes", "page range lies outside the stored bytes", [&](std::vector<Note> &notes, SyntheticImage &s) {
    // First range of VMA 0 claims 3 stored pages; the segment holds 2.
    s.notes.ranges.records[0].length += 0x1000;
    s.notes.ranges.records[1].start += 0x1000;
    s.notes.ranges.records[1].length -= 0x1000;
    retable(notes, CkptNote::PageRanges, s.notes.ranges.encode());
  });
  semantic("ranges-do-not-tile", "page ranges do not tile the VMA", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.ranges.records[1].length -= 0x1000;
    retable(notes, CkptNote::PageRanges, s.notes.ranges.encode());
  });
  semantic("range-unknown-source", "page range has an unknown source", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.ranges.records[1].source = 77;
    retable(notes, CkptNote::PageRanges, s.notes.ranges.encode());
  });
  semantic("range-parent-without-parent", "refers to a parent image but the image has none", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.ranges.records[1].source = static_cast<u32>(PageSource::Parent);
    retable(notes, CkptNote::PageRanges, s.notes.ranges.encode());
  });
  semantic("parent-two-records", "parent note has 2 records, not 1", [&](std::vector<Note> &notes, SyntheticImage &) {
    TableBuilder<ParentRecord> p;
    ParentRecord r{};
    r.path_hint = p.add_string("x");
    p.add(r);
    p.add(r);
    notes.push_back(make_ckpt_note(CkptNote::Parent, p.encode()));
  });
  semantic("table-record-size-4", "timers note at offset", [&](std::vector<Note> &notes, SyntheticImage &) {
    std::vector<u8> d(sizeof(TableHeader) + 8, 0);
    TableHeader h{sizeof(TableHeader), 1, 4, 2, 0};
    std::memcpy(d.data(), &h, sizeof h);
    retable(notes, CkptNote::Timers, d);
  });
  semantic("prstatus-335-bytes", "has 335 bytes, not 336", [&](std::vector<Note> &notes, SyntheticImage &) {
    find_note(notes, kOwnerCore, kNtPrstatus)->desc.pop_back();
  });
  semantic("prpsinfo-137-bytes", "has 137 bytes, not 136", [&](std::vector<Note> &notes, SyntheticImage &) {
    find_note(notes, kOwnerCore, kNtPrpsinfo)->desc.push_back(0);
  });
  semantic("fpregset-before-prstatus", "NT_FPREGSET before any NT_PRSTATUS", [&](std::vector<Note> &notes, SyntheticImage &) {
    auto it = std::find_if(notes.begin(), notes.end(), [](const Note &n) { return n.type == kNtFpregset; });
    Note fp = *it;
    notes.erase(it);
    notes.insert(notes.begin(), fp);
  });
  semantic("fpregset-511-bytes", "has 511 bytes, not 512", [&](std::vector<Note> &notes, SyntheticImage &) {
    find_note(notes, kOwnerCore, kNtFpregset)->desc.pop_back();
  });
  semantic("xstate-too-small", "has only 100 bytes", [&](std::vector<Note> &notes, SyntheticImage &) {
    find_note(notes, kOwnerLinux, kNtX86Xstate)->desc.resize(100);
  });
  semantic("auxv-odd-size", "not a whole number of pairs", [&](std::vector<Note> &notes, SyntheticImage &) {
    find_note(notes, kOwnerCore, kNtAuxv)->desc.resize(24);
  });
  semantic("ntfile-count-huge", "NT_FILE claims 2305843009213693952 entries", [&](std::vector<Note> &notes, SyntheticImage &) {
    u64 huge = u64(1) << 61;
    std::memcpy(find_note(notes, kOwnerCore, kNtFile)->desc.data(), &huge, 8);
  });
}

void tree_variants(Maker &k) {
  auto emit = [&k](auto &&...args) { k.emit(std::forward<decltype(args)>(args)...); };
  // ---- A process tree (FORMAT.md §12.1): lying Tree records, resealed so
  // that only the Tree's bounds can catch them, and damage inside an
  // embedded core, which the root's resealed checksums no longer see.
  std::vector<u8> tb = encode_tree_image(make_synthetic_tree());
  auto tr = ImageReader::from_bytes(tb);
  const NoteRef *tn = tr ? tr->find_ckpt(CkptNote::Tree) : nullptr;
  if (tn) {
    const u64 records = (tn->desc.data() - tr->bytes().data()) + sizeof(TableHeader);
    const u64 integrity = tr->phdrs().back().p_offset;
    auto field = [&](u32 i, size_t off) { return records + i * sizeof(TreeRecord) + off; };
    const u64 first = get<u64>(tb, field(0, offsetof(TreeRecord, offset)));
    const u64 second = get<u64>(tb, field(2, offsetof(TreeRecord, offset)));
    auto tpatch = [&](const std::string &name, const std::string &expect,
                      const std::function<void(std::vector<u8> &)> &patch) {
      std::vector<u8> b = tb;
      patch(b);
      emit(DamageKind::Absurd, "tree-" + name, expect + "|checksum mismatch", b);
      if (reseal(b, integrity)) emit(DamageKind::Absurd, "tree-" + name, expect, std::move(b), true);
    };
    tpatch("offset-unaligned", "not page-aligned", [&](std::vector<u8> &b) { put<u64>(b, field(0, offsetof(TreeRecord, offset)), first + 8); });
    tpatch("offset-in-root-notes", "overlaps the root", [&](std::vector<u8> &b) { put<u64>(b, field(0, offsetof(TreeRecord, offset)), 0); });
    tpatch("cores-overlap", "overlaps the root's data or the core before it", [&](std::vector<u8> &b) { put<u64>(b, field(2, offsetof(TreeRecord, offset)), first); });
    tpatch("size-past-integrity", "runs past the root", [&](std::vector<u8> &b) {
      put<u64>(b, field(2, offsetof(TreeRecord, size)), integrity - second + 4096);
    });
    tpatch("size-huge", "runs past the root", [&](std::vector<u8> &b) { put<u64>(b, field(2, offsetof(TreeRecord, size)), ~u64(0) - 4096); });
    tpatch("zombie-with-core", "a zombie has no embedded core", [&](std::vector<u8> &b) { put<u64>(b, field(1, offsetof(TreeRecord, offset)), first); });
    tpatch("live-without-core", "too small for an ELF header", [&](std::vector<u8> &b) { put<u32>(b, field(0, offsetof(TreeRecord, flags)), 0); put<u64>(b, field(0, offsetof(TreeRecord, size)), 0); });
    tpatch("pid-repeated", "is not a new positive pid", [&](std::vector<u8> &b) { put<i32>(b, field(2, offsetof(TreeRecord, pid)), 5000); });
    tpatch("parent-unknown", "neither the root nor an earlier record", [&](std::vector<u8> &b) { put<i32>(b, field(2, offsetof(TreeRecord, ppid)), 77); });
    tpatch("core-in-core", "tree record 2 (pid 6000): embedded core at offset 0", [&](std::vector<u8> &b) {
      // The second core's offset pointed at the root itself: a Tree inside.
      put<u64>(b, field(2, offsetof(TreeRecord, offset)), 0);
    });
    tpatch("embedded-byte-flipped", "process 6000 (embedded core at offset", [&](std::vector<u8> &b) { b[second + 300] ^= 0x10; });
    tpatch("embedded-marker-cleared", "is not a ckpt image", [&](std::vector<u8> &b) { b[second + 9] = 0; });
    // Only the whole file's head may be an exec head (§12.3): an embedded
    // core that looks like the exec form is refused before it is parsed.
    tpatch("embedded-exec-head", "embedded core at offset " + std::to_string(second) + " is in the exec form",
           [&](std::vector<u8> &b) { put<u16>(b, second + offsetof(Elf64_Ehdr, e_type), ET_DYN); });
  }
}

void xnum_variants(Maker &k) {
  const CorpusOptions &o = k.o;
  auto emit = [&k](auto &&...args) { k.emit(std::forward<decltype(args)>(args)...); };
  // ---- Lying PN_XNUM ------------------------------------------------------------
  SyntheticOptions xo = o.base;
  xo.extra_segments = 65540;
  std::vector<u8> xb = encode_image(corpus_base_image(xo));
  Elf64_Ehdr eh = get<Elf64_Ehdr>(xb, 0);
  if (!xb.empty() && eh.e_phnum == 0xffff && eh.e_shoff) {
    u64 sh_info = eh.e_shoff + offsetof(Elf64_Shdr, sh_info);
    u32 real = get<u32>(xb, sh_info);
    Elf64_Phdr last = get<Elf64_Phdr>(xb, kPhdrOffset + (real - 1) * sizeof(Elf64_Phdr));
    auto xpatch = [&](const std::string &name, const std::string &expect,
                      const std::function<void(std::vector<u8> &)> &patch) {
      std::vector<u8> b = xb;
      patch(b);
      emit(DamageKind::Xnum, name, expect + "|checksum mismatch", b);
      if (reseal(b, last.p_offset)) emit(DamageKind::Xnum, name, expect, std::move(b), true);
    };
    xpatch("sh_info-plus-1", "not alone in the last PT_NOTE", [&](std::vector<u8> &b) { put<u32>(b, sh_info, real + 1); });
    xpatch("sh_info-minus-1", "no integrity note", [&](std::vector<u8> &b) { put<u32>(b, sh_info, real - 1); });
    xpatch("sh_info-huge", "program headers at offset 128 run past the end", [&](std::vector<u8> &b) { put<u32>(b, sh_info, 0xfffffff0u); });
    xpatch("sh_info-below-xnum", "section header 0 gives only 65534", [&](std::vector<u8> &b) { put<u32>(b, sh_info, 0xfffe); });
    xpatch("sh_info-zero", "section header 0 gives only 0", [&](std::vector<u8> &b) { put<u32>(b, sh_info, 0); });
    xpatch("e_shoff-past-eof", "section header 0 at offset", [&](std::vector<u8> &b) { put<u64>(b, offsetof(Elf64_Ehdr, e_shoff), xb.size()); });
    xpatch("e_shoff-huge", "section header 0 at offset", [&](std::vector<u8> &b) { put<u64>(b, offsetof(Elf64_Ehdr, e_shoff), ~u64(0) - 16); });
    xpatch("e_shoff-zero", "no section header 0", [&](std::vector<u8> &b) { put<u64>(b, offsetof(Elf64_Ehdr, e_shoff), 0); });
    xpatch("e_shnum-zero", "no section header 0", [&](std::vector<u8> &b) { put<u16>(b, offsetof(Elf64_Ehdr, e_shnum), 0); });
    xpatch("e_shentsize-40", "e_shentsize 40 is not 64", [&](std::vector<u8> &b) { put<u16>(b, offsetof(Elf64_Ehdr, e_shentsize), 40); });
    xpatch("e_phnum-fffe", "no integrity note", [&](std::vector<u8> &b) { put<u16>(b, offsetof(Elf64_Ehdr, e_phnum), 0xfffe); });
    emit(DamageKind::Xnum, "truncated-before-shdr", "lies past the end of the", std::vector<u8>(xb.begin(), xb.begin() + eh.e_shoff + 8));
  }
}

}  // namespace ckpt::test::corpus
