#include "damaged_corpus.h"

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

namespace {

template <typename T>
void put(std::vector<u8> &b, u64 off, T v) {
  if (off + sizeof(T) <= b.size()) std::memcpy(b.data() + off, &v, sizeof(T));
}
template <typename T>
T get(const std::vector<u8> &b, u64 off) {
  T v{};
  if (off + sizeof(T) <= b.size()) std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}

std::vector<u8> encode_notes(const std::vector<Note> &notes, const SyntheticImage &im) {
  auto w = ImageWriter::create(notes, im.segments);
  if (!w) return {};
  int fd = memfd_create("corpus", MFD_CLOEXEC);
  if (fd < 0) return {};
  bool ok = bool(w->begin(fd));
  for (const auto &d : im.segment_data)
    if (ok) ok = bool(w->write(d));
  if (ok) ok = bool(w->finish());
  std::vector<u8> out;
  if (ok) {
    out.resize(w->layout().total_size);
    if (pread(fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) out.clear();
  }
  close(fd);
  return out;
}

// Where things are in a good image, found with the reader.
struct Map {
  std::vector<Elf64_Phdr> ph;
  struct N {
    std::string owner;
    u32 type;
    u64 offset, desc_offset, desc_size, size;
    u32 phdr;
  };
  std::vector<N> notes;
  u64 integrity_offset = 0, integrity_size = 0, size = 0;
  u64 phdr_off(size_t i, size_t field) const { return kPhdrOffset + i * sizeof(Elf64_Phdr) + field; }
  const N *find(const char *owner, u32 type) const {
    for (const N &n : notes)
      if (n.owner == owner && n.type == type) return &n;
    return nullptr;
  }
};

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

}  // namespace

bool reseal(std::vector<u8> &bytes, u64 integrity_offset) {
  // Note header (12) + "CKPT\0" padded to 8, then the table.
  u64 desc = integrity_offset + 20;
  if (desc + sizeof(TableHeader) > bytes.size()) return false;
  if (std::memcmp(bytes.data() + integrity_offset + 12, "CKPT", 5) != 0) return false;
  TableHeader h = get<TableHeader>(bytes, desc);
  if (h.record_size != sizeof(IntegrityRecord) || h.record_count == 0) return false;
  u64 recs = desc + h.header_size;
  if (recs + u64(h.record_count) * sizeof(IntegrityRecord) > bytes.size()) return false;
  for (u32 i = 0; i < h.record_count; i++) {
    u64 at = recs + u64(i) * sizeof(IntegrityRecord);
    IntegrityRecord r = get<IntegrityRecord>(bytes, at);
    if (i + 1 == h.record_count) break;  // SelfCheck last
    if (r.offset > bytes.size() || r.size > bytes.size() - r.offset) continue;
    r.xxh3 = XXH3_64bits(bytes.data() + r.offset, r.size);
    put(bytes, at, r);
  }
  u64 at = recs + u64(h.record_count - 1) * sizeof(IntegrityRecord);
  IntegrityRecord self = get<IntegrityRecord>(bytes, at);
  if (self.offset != integrity_offset || self.offset + self.size > bytes.size()) return false;
  self.xxh3 = XXH3_64bits(bytes.data() + self.offset, self.size);
  put(bytes, at, self);
  return true;
}

void for_each_variant(const CorpusOptions &o, const std::function<void(const Variant &)> &visit) {
  SyntheticImage im = corpus_base_image(o.base);
  std::vector<u8> base = encode_image(im);
  Map m;
  if (base.empty() || !map_image(base, m)) return;  // the test checks the base separately
  const size_t phnum = m.ph.size();
  const u64 notes_off = m.ph[0].p_offset, notes_end = notes_off + m.ph[0].p_filesz;

  Variant v;
  auto emit = [&](DamageKind kind, std::string name, std::vector<u8> bytes, bool resealed = false) {
    v.kind = kind;
    v.name = std::string(kind_name(kind)) + "-" + name + (resealed ? "-resealed" : "");
    v.resealed = resealed;
    v.bytes = std::move(bytes);
    visit(v);
  };
  // A patch, both as is (the checksums must catch it) and resealed (the
  // structural checks must).
  auto patched = [&](const std::string &name, const std::function<void(std::vector<u8> &)> &patch,
                     bool also_resealed = true) {
    std::vector<u8> b = base;
    patch(b);
    if (b == base) return;
    emit(DamageKind::Absurd, name, b);
    if (also_resealed && reseal(b, m.integrity_offset)) emit(DamageKind::Absurd, name, std::move(b), true);
  };

  // ---- Truncations -------------------------------------------------------
  std::set<u64> cuts = {0, 1, 63, 64, 64 + 56, notes_off - 1, notes_off, notes_off + 1, notes_off + 12,
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
    if (c < m.size) emit(DamageKind::Truncated, "at-" + std::to_string(c), std::vector<u8>(base.begin(), base.begin() + c));

  // ---- Single flipped bytes -----------------------------------------------
  auto flip = [&](u64 off, u8 mask) {
    std::vector<u8> b = base;
    b[off] ^= mask;
    char name[64];
    std::snprintf(name, sizeof name, "at-%llu-x%02x", (unsigned long long)off, mask);
    emit(DamageKind::Flipped, name, std::move(b));
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

  // ---- Absurd counts, sizes and offsets -----------------------------------
  const u64 e_phnum = offsetof(Elf64_Ehdr, e_phnum);
  for (u16 n : {u16(0), u16(1), u16(phnum - 1), u16(phnum + 1), u16(0x7fff), u16(0xfffe)})
    patched("e_phnum-" + std::to_string(n), [&](std::vector<u8> &b) { put<u16>(b, e_phnum, n); });
  patched("e_phoff-odd", [&](std::vector<u8> &b) { put<u64>(b, offsetof(Elf64_Ehdr, e_phoff), 65); });
  patched("e_phoff-past-eof", [&](std::vector<u8> &b) { put<u64>(b, offsetof(Elf64_Ehdr, e_phoff), m.size); });
  patched("e_phoff-huge", [&](std::vector<u8> &b) { put<u64>(b, offsetof(Elf64_Ehdr, e_phoff), ~u64(7)); });
  patched("e_phentsize-32", [&](std::vector<u8> &b) { put<u16>(b, offsetof(Elf64_Ehdr, e_phentsize), 32); });
  patched("e_type-exec", [&](std::vector<u8> &b) { put<u16>(b, offsetof(Elf64_Ehdr, e_type), ET_EXEC); });
  patched("e_machine-aarch64", [&](std::vector<u8> &b) { put<u16>(b, offsetof(Elf64_Ehdr, e_machine), EM_AARCH64); });
  patched("elfclass32", [&](std::vector<u8> &b) { b[EI_CLASS] = ELFCLASS32; });
  patched("big-endian", [&](std::vector<u8> &b) { b[EI_DATA] = ELFDATA2MSB; });
  patched("format-major-2", [&](std::vector<u8> &b) { b[kIdentVersionOffset] = 2; });
  patched("phnum-xnum-without-shdr", [&](std::vector<u8> &b) { put<u16>(b, e_phnum, 0xffff); });

  const u64 f_off = offsetof(Elf64_Phdr, p_offset), f_filesz = offsetof(Elf64_Phdr, p_filesz),
            f_memsz = offsetof(Elf64_Phdr, p_memsz), f_vaddr = offsetof(Elf64_Phdr, p_vaddr),
            f_align = offsetof(Elf64_Phdr, p_align), f_type = offsetof(Elf64_Phdr, p_type);
  // PT_NOTE 0.
  patched("note0-filesz-past-eof", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(0, f_filesz), m.size); });
  patched("note0-filesz-huge", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(0, f_filesz), ~u64(0) - 8); });
  patched("note0-offset-wraps", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(0, f_off), ~u64(0) - 4); });
  patched("note0-filesz-minus-4", [&](std::vector<u8> &b) {
    put<u64>(b, m.phdr_off(0, f_filesz), m.ph[0].p_filesz - 4);
  });
  patched("note0-filesz-minus-last-note", [&](std::vector<u8> &b) {
    u64 last = 0;
    for (const auto &n : m.notes)
      if (n.phdr == 0) last = n.size;
    put<u64>(b, m.phdr_off(0, f_filesz), m.ph[0].p_filesz - last);
  });
  patched("note0-filesz-plus-12", [&](std::vector<u8> &b) {
    put<u64>(b, m.phdr_off(0, f_filesz), m.ph[0].p_filesz + 12);
  });
  patched("note0-align-3", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(0, f_align), 3); });
  patched("note0-align-16", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(0, f_align), 16); });
  patched("note0-becomes-load", [&](std::vector<u8> &b) { put<u32>(b, m.phdr_off(0, f_type), PT_LOAD); });
  patched("last-note-becomes-null", [&](std::vector<u8> &b) { put<u32>(b, m.phdr_off(phnum - 1, f_type), PT_NULL); });
  patched("integrity-filesz-minus-4", [&](std::vector<u8> &b) {
    put<u64>(b, m.phdr_off(phnum - 1, f_filesz), m.integrity_size - 4);
  });
  // Notes whose sizes run past the end of their PT_NOTE.
  for (const auto &n : m.notes) {
    if (n.phdr != 0) continue;
    if (n.type != kNtPrpsinfo && n.type != kNtFile && n.type != static_cast<u32>(CkptNote::Tasks) &&
        n.type != static_cast<u32>(CkptNote::Rlimits))
      continue;
    std::string tag = n.owner + "-" + std::to_string(n.type);
    patched("descsz-huge-" + tag, [&](std::vector<u8> &b) { put<u32>(b, n.offset + 4, 0xfffffff0u); });
    patched("descsz-past-note-" + tag, [&](std::vector<u8> &b) {
      put<u32>(b, n.offset + 4, static_cast<u32>(notes_end - (n.desc_offset) + 1));
    });
    patched("namesz-huge-" + tag, [&](std::vector<u8> &b) { put<u32>(b, n.offset, 0xffffffffu); });
  }
  const Map::N *last0 = nullptr;
  for (const auto &n : m.notes)
    if (n.phdr == 0) last0 = &n;
  if (last0)
    patched("last-note-descsz-plus-4", [&](std::vector<u8> &b) {
      put<u32>(b, last0->offset + 4, static_cast<u32>(last0->desc_size + 4));
    });
  // Table headers of CKPT notes.
  for (CkptNote t : {CkptNote::Identity, CkptNote::Tasks, CkptNote::Threads, CkptNote::Vmas, CkptNote::PageRanges,
                     CkptNote::Fds}) {
    const Map::N *n = m.find(kOwnerCkpt, static_cast<u32>(t));
    if (!n) continue;
    std::string tag = std::to_string(static_cast<u32>(t) & 0xff);
    u64 h = n->desc_offset;
    patched("table" + tag + "-count-huge", [&](std::vector<u8> &b) {
      put<u32>(b, h + offsetof(TableHeader, record_count), 0xffffffffu);
    });
    patched("table" + tag + "-count-plus-1", [&](std::vector<u8> &b) {
      put<u32>(b, h + offsetof(TableHeader, record_count), get<u32>(b, h + offsetof(TableHeader, record_count)) + 1);
    });
    patched("table" + tag + "-record-size-4", [&](std::vector<u8> &b) {
      put<u32>(b, h + offsetof(TableHeader, record_size), 4);
    });
    patched("table" + tag + "-record-size-huge", [&](std::vector<u8> &b) {
      put<u32>(b, h + offsetof(TableHeader, record_size), 0x80000000u);
    });
    patched("table" + tag + "-header-size-0", [&](std::vector<u8> &b) {
      put<u32>(b, h + offsetof(TableHeader, header_size), 0);
    });
    patched("table" + tag + "-header-size-huge", [&](std::vector<u8> &b) {
      put<u32>(b, h + offsetof(TableHeader, header_size), 0xfffffff0u);
    });
    patched("table" + tag + "-data-size-huge", [&](std::vector<u8> &b) {
      put<u64>(b, h + offsetof(TableHeader, data_size), ~u64(0));
    });
  }
  if (const Map::N *f = m.find(kOwnerCore, kNtFile)) {
    patched("ntfile-count-huge", [&](std::vector<u8> &b) { put<u64>(b, f->desc_offset, u64(1) << 62); });
    patched("ntfile-count-plus-1", [&](std::vector<u8> &b) {
      put<u64>(b, f->desc_offset, get<u64>(b, f->desc_offset) + 1);
    });
    patched("ntfile-pagesize-0", [&](std::vector<u8> &b) { put<u64>(b, f->desc_offset + 8, 0); });
    patched("ntfile-pagesize-huge", [&](std::vector<u8> &b) { put<u64>(b, f->desc_offset + 8, u64(1) << 63); });
    patched("ntfile-end-before-start", [&](std::vector<u8> &b) { put<u64>(b, f->desc_offset + 16 + 8, 0); });
    patched("ntfile-name-unterminated", [&](std::vector<u8> &b) {
      // The last name's NUL becomes 'x'.
      b[f->desc_offset + f->desc_size - 1] = 'x';
    });
  }
  if (const Map::N *p = m.find(kOwnerCore, kNtPrstatus))
    patched("prstatus-type-becomes-fpregset-first", [&](std::vector<u8> &b) { put<u32>(b, p->offset + 8, kNtFpregset); });
  if (const Map::N *a = m.find(kOwnerCore, kNtAuxv))
    patched("auxv-descsz-minus-8", [&](std::vector<u8> &b) {
      // Shrink desc by 8 and move the following notes? No: the remaining 8
      // bytes would become a bogus note header. Either way it must fail.
      put<u32>(b, a->offset + 4, static_cast<u32>(a->desc_size - 8));
    });
  // PT_LOADs.
  if (phnum >= 4) {
    patched("loads-overlap", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(2, f_vaddr), m.ph[1].p_vaddr + 0x1000);
    });
    patched("loads-identical", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(2, f_vaddr), m.ph[1].p_vaddr); });
    patched("loads-out-of-order", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(1, f_vaddr), m.ph[2].p_vaddr);
      put<u64>(b, m.phdr_off(2, f_vaddr), m.ph[1].p_vaddr);
    });
    patched("load-filesz-gt-memsz", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(1, f_memsz), m.ph[1].p_filesz - 0x1000);
    });
    patched("load-filesz-past-eof", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(phnum - 2, f_filesz), m.size);
      put<u64>(b, m.phdr_off(phnum - 2, f_memsz), m.size);
    });
    patched("load-offset-huge", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(1, f_off), ~u64(0) - 0xfff); });
    patched("load-offset-unaligned", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(1, f_off), m.ph[1].p_offset + 8);
    });
    patched("load-vaddr-wraps", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(phnum - 2, f_vaddr), ~u64(0) - 0xfff);
    });
    patched("load-shares-file-bytes", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(2, f_off), m.ph[1].p_offset);
    });
    patched("load-memsz-huge", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(phnum - 2, f_memsz), ~u64(0)); });
  }

  // The zero block and the zero segment that reads it.
  size_t zi = 0;
  for (size_t i = 1; i + 1 < phnum; i++)
    if (m.ph[i].p_vaddr == 0x20000000) zi = i;
  if (zi) {
    const Elf64_Phdr &z = m.ph[zi];
    patched("zero-block-not-zero", [&](std::vector<u8> &b) { b[z.p_offset + 100] = 1; });
    patched("zero-segment-outside-block", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(zi, f_off), m.ph[1].p_offset);
    });
    patched("zero-segment-past-block", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(zi, f_filesz), z.p_filesz + 0x1000);
      put<u64>(b, m.phdr_off(zi, f_memsz), z.p_memsz + 0x1000);
    });
    patched("zero-segment-offset-inside-notes", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(zi, f_off), 0);
    });
  }

  // ---- Semantic damage, written with correct checksums ----------------------
  auto semantic = [&](const std::string &name, const std::function<void(std::vector<Note> &, SyntheticImage &)> &f) {
    SyntheticImage copy = im;
    std::vector<Note> notes = copy.notes.encode();
    f(notes, copy);
    std::vector<u8> b = encode_notes(notes, copy);
    if (!b.empty()) emit(DamageKind::Semantic, name, std::move(b));
  };
  auto find_note = [](std::vector<Note> &notes, const char *owner, u32 type) -> Note * {
    for (Note &n : notes)
      if (n.owner == owner && n.type == type) return &n;
    return nullptr;
  };
  auto retable = [&](std::vector<Note> &notes, CkptNote t, const std::vector<u8> &desc) {
    if (Note *n = find_note(notes, kOwnerCkpt, static_cast<u32>(t))) n->desc = desc;
  };
  semantic("identity-two-records", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.identity.add(s.notes.identity.records[0]);
    retable(notes, CkptNote::Identity, s.notes.identity.encode());
  });
  semantic("identity-zero-records", [&](std::vector<Note> &notes, SyntheticImage &) {
    // An empty table, header only (TableBuilder<>().encode() of an empty
    // builder trips a GCC 12 -Warray-bounds false positive).
    std::vector<u8> d(sizeof(TableHeader));
    TableHeader h{sizeof(TableHeader), 1, sizeof(IdentityRecord), 0, 0};
    std::memcpy(d.data(), &h, sizeof h);
    retable(notes, CkptNote::Identity, d);
  });
  semantic("identity-string-out-of-bounds", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.identity.records[0].hostname = {1000, 5};
    retable(notes, CkptNote::Identity, s.notes.identity.encode());
  });
  semantic("task-string-out-of-bounds", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.tasks.records[0].comm.length = 100000;
    retable(notes, CkptNote::Tasks, s.notes.tasks.encode());
  });
  semantic("task-blob-out-of-bounds", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.tasks.records[0].groups.offset = ~u64(0) - 2;
    retable(notes, CkptNote::Tasks, s.notes.tasks.encode());
  });
  semantic("thread-name-out-of-bounds", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.thread_records.records.back().comm.offset = 0xffffffffu;
    retable(notes, CkptNote::Threads, s.notes.thread_records.encode());
  });
  semantic("fd-path-out-of-bounds", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.fds.records[0].path.length = 0xffffffffu;
    retable(notes, CkptNote::Fds, s.notes.fds.encode());
  });
  semantic("pipe-blob-out-of-bounds", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.pipes.records[0].data.length = 1u << 20;
    retable(notes, CkptNote::Pipes, s.notes.pipes.encode());
  });
  semantic("vma-unaligned", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.vmas.records[0].start += 1;
    retable(notes, CkptNote::Vmas, s.notes.vmas.encode());
  });
  semantic("vma-empty", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.vmas.records[0].end = s.notes.vmas.records[0].start;
    retable(notes, CkptNote::Vmas, s.notes.vmas.encode());
  });
  semantic("vma-ranges-out-of-bounds", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.vmas.records.back().first_range = 0xfffffff0u;
    s.notes.vmas.records.back().range_count = 0x20;
    retable(notes, CkptNote::Vmas, s.notes.vmas.encode());
  });
  semantic("range-names-pt-note", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.ranges.records[0].segment = 0;
    retable(notes, CkptNote::PageRanges, s.notes.ranges.encode());
  });
  semantic("range-segment-out-of-bounds", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.ranges.records[0].segment = 1000000;
    retable(notes, CkptNote::PageRanges, s.notes.ranges.encode());
  });
  semantic("range-beyond-stored-bytes", [&](std::vector<Note> &notes, SyntheticImage &s) {
    // First range of VMA 0 claims 3 stored pages; the segment holds 2.
    s.notes.ranges.records[0].length += 0x1000;
    s.notes.ranges.records[1].start += 0x1000;
    s.notes.ranges.records[1].length -= 0x1000;
    retable(notes, CkptNote::PageRanges, s.notes.ranges.encode());
  });
  semantic("ranges-do-not-tile", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.ranges.records[1].length -= 0x1000;
    retable(notes, CkptNote::PageRanges, s.notes.ranges.encode());
  });
  semantic("range-unknown-source", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.ranges.records[1].source = 77;
    retable(notes, CkptNote::PageRanges, s.notes.ranges.encode());
  });
  semantic("range-parent-without-parent", [&](std::vector<Note> &notes, SyntheticImage &s) {
    s.notes.ranges.records[1].source = static_cast<u32>(PageSource::Parent);
    retable(notes, CkptNote::PageRanges, s.notes.ranges.encode());
  });
  semantic("parent-two-records", [&](std::vector<Note> &notes, SyntheticImage &) {
    TableBuilder<ParentRecord> p;
    ParentRecord r{};
    r.path_hint = p.add_string("x");
    p.add(r);
    p.add(r);
    notes.push_back(make_ckpt_note(CkptNote::Parent, p.encode()));
  });
  semantic("table-record-size-4", [&](std::vector<Note> &notes, SyntheticImage &) {
    std::vector<u8> d(sizeof(TableHeader) + 8, 0);
    TableHeader h{sizeof(TableHeader), 1, 4, 2, 0};
    std::memcpy(d.data(), &h, sizeof h);
    retable(notes, CkptNote::Timers, d);
  });
  semantic("prstatus-335-bytes", [&](std::vector<Note> &notes, SyntheticImage &) {
    find_note(notes, kOwnerCore, kNtPrstatus)->desc.pop_back();
  });
  semantic("prpsinfo-137-bytes", [&](std::vector<Note> &notes, SyntheticImage &) {
    find_note(notes, kOwnerCore, kNtPrpsinfo)->desc.push_back(0);
  });
  semantic("fpregset-before-prstatus", [&](std::vector<Note> &notes, SyntheticImage &) {
    auto it = std::find_if(notes.begin(), notes.end(), [](const Note &n) { return n.type == kNtFpregset; });
    Note fp = *it;
    notes.erase(it);
    notes.insert(notes.begin(), fp);
  });
  semantic("fpregset-511-bytes", [&](std::vector<Note> &notes, SyntheticImage &) {
    find_note(notes, kOwnerCore, kNtFpregset)->desc.pop_back();
  });
  semantic("xstate-too-small", [&](std::vector<Note> &notes, SyntheticImage &) {
    find_note(notes, kOwnerLinux, kNtX86Xstate)->desc.resize(100);
  });
  semantic("auxv-odd-size", [&](std::vector<Note> &notes, SyntheticImage &) {
    find_note(notes, kOwnerCore, kNtAuxv)->desc.resize(24);
  });
  semantic("ntfile-count-huge", [&](std::vector<Note> &notes, SyntheticImage &) {
    u64 huge = u64(1) << 61;
    std::memcpy(find_note(notes, kOwnerCore, kNtFile)->desc.data(), &huge, 8);
  });

  // ---- Lying PN_XNUM ------------------------------------------------------------
  if (o.xnum) {
    SyntheticOptions xo = o.base;
    xo.extra_segments = 65540;
    std::vector<u8> xb = encode_image(corpus_base_image(xo));
    Elf64_Ehdr eh = get<Elf64_Ehdr>(xb, 0);
    if (!xb.empty() && eh.e_phnum == 0xffff && eh.e_shoff) {
      u64 sh_info = eh.e_shoff + offsetof(Elf64_Shdr, sh_info);
      u32 real = get<u32>(xb, sh_info);
      Elf64_Phdr last = get<Elf64_Phdr>(xb, kPhdrOffset + (real - 1) * sizeof(Elf64_Phdr));
      auto xpatch = [&](const std::string &name, const std::function<void(std::vector<u8> &)> &patch) {
        std::vector<u8> b = xb;
        patch(b);
        emit(DamageKind::Xnum, name, b);
        if (reseal(b, last.p_offset)) emit(DamageKind::Xnum, name, std::move(b), true);
      };
      xpatch("sh_info-plus-1", [&](std::vector<u8> &b) { put<u32>(b, sh_info, real + 1); });
      xpatch("sh_info-minus-1", [&](std::vector<u8> &b) { put<u32>(b, sh_info, real - 1); });
      xpatch("sh_info-huge", [&](std::vector<u8> &b) { put<u32>(b, sh_info, 0xfffffff0u); });
      xpatch("sh_info-below-xnum", [&](std::vector<u8> &b) { put<u32>(b, sh_info, 0xfffe); });
      xpatch("sh_info-zero", [&](std::vector<u8> &b) { put<u32>(b, sh_info, 0); });
      xpatch("e_shoff-past-eof", [&](std::vector<u8> &b) { put<u64>(b, offsetof(Elf64_Ehdr, e_shoff), xb.size()); });
      xpatch("e_shoff-huge", [&](std::vector<u8> &b) { put<u64>(b, offsetof(Elf64_Ehdr, e_shoff), ~u64(0) - 16); });
      xpatch("e_shoff-zero", [&](std::vector<u8> &b) { put<u64>(b, offsetof(Elf64_Ehdr, e_shoff), 0); });
      xpatch("e_shnum-zero", [&](std::vector<u8> &b) { put<u16>(b, offsetof(Elf64_Ehdr, e_shnum), 0); });
      xpatch("e_shentsize-40", [&](std::vector<u8> &b) { put<u16>(b, offsetof(Elf64_Ehdr, e_shentsize), 40); });
      xpatch("e_phnum-fffe", [&](std::vector<u8> &b) { put<u16>(b, offsetof(Elf64_Ehdr, e_phnum), 0xfffe); });
      emit(DamageKind::Xnum, "truncated-before-shdr", std::vector<u8>(xb.begin(), xb.begin() + eh.e_shoff + 8));
    }
  }
}

}  // namespace ckpt::test
