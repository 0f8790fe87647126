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
  Map m;
  if (base.empty() || !map_image(base, m)) return;  // the test checks the base separately
  const size_t phnum = m.ph.size();
  const u64 notes_off = m.ph[0].p_offset, notes_end = notes_off + m.ph[0].p_filesz;

  Variant v;
  auto emit = [&](DamageKind kind, std::string name, std::string expect, std::vector<u8> bytes,
                  bool resealed = false) {
    v.kind = kind;
    v.expect = std::move(expect);
    v.name = std::string(kind_name(kind)) + "-" + name + (resealed ? "-resealed" : "");
    v.resealed = resealed;
    v.bytes = std::move(bytes);
    visit(v);
  };
  // A patch, both as is (the checksums must catch it) and resealed (the
  // structural checks must).
  // As is, a patch may be caught by a structural check or by the checksum of
  // the bytes it changed; resealed, only by the structural check `expect`.
  auto patched = [&](const std::string &name, const std::string &expect,
                     const std::function<void(std::vector<u8> &)> &patch, bool also_resealed = true) {
    std::vector<u8> b = base;
    patch(b);
    if (b == base) return;
    emit(DamageKind::Absurd, name, expect + "|checksum mismatch", b);
    if (also_resealed && reseal(b, m.integrity_offset)) emit(DamageKind::Absurd, name, expect, std::move(b), true);
  };

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
    v.damaged_at = off;
    // Bytes of memory and padding are covered by checksums alone; a header
    // or note byte may first fail a structural check.
    v.checksum_only = off >= notes_end && off < m.integrity_offset;
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

  // ---- Absurd counts, sizes and offsets -----------------------------------
  const u64 e_phnum = offsetof(Elf64_Ehdr, e_phnum);
  for (u16 n : {u16(0), u16(1), u16(phnum - 1), u16(phnum + 1), u16(0x7fff), u16(0xfffe)}) {
    std::string expect = n == 0                       ? "no program headers"
                         : n == 1 || n == phnum - 1   ? "no integrity note"
                         : n == phnum + 1             ? "not alone in the last PT_NOTE"
                                                      : "program headers at offset 128 run past the end";
    patched("e_phnum-" + std::to_string(n), expect, [&](std::vector<u8> &b) { put<u16>(b, e_phnum, n); });
  }
  patched("e_phoff-odd", "e_phoff 65 is not 8-aligned", [&](std::vector<u8> &b) { put<u64>(b, offsetof(Elf64_Ehdr, e_phoff), 65); });
  patched("e_phoff-past-eof", "run past the end", [&](std::vector<u8> &b) {
    put<u64>(b, offsetof(Elf64_Ehdr, e_phoff), (m.size + 7) & ~u64(7));  // aligned: only its place is wrong
  });
  patched("e_phoff-huge", "run past the end", [&](std::vector<u8> &b) { put<u64>(b, offsetof(Elf64_Ehdr, e_phoff), ~u64(7)); });
  patched("e_phentsize-32", "e_phentsize 32 is not 56", [&](std::vector<u8> &b) { put<u16>(b, offsetof(Elf64_Ehdr, e_phentsize), 32); });
  // A marked ELF that is not ET_CORE is the exec form (FORMAT.md §12.3):
  // a core form's zeros at 64 are then a damaged saved core header.
  patched("e_type-exec", "the core ELF header saved at offset 64 is damaged",
          [&](std::vector<u8> &b) { put<u16>(b, offsetof(Elf64_Ehdr, e_type), ET_EXEC); });
  // An exec head whose launcher is missing: the core header saved at 64,
  // an exec header at 0 pointing past the end of the file.
  patched("exec-head-without-launcher", "before its launcher at offset", [&](std::vector<u8> &b) {
    std::memcpy(b.data() + 64, b.data(), 64);
    put<u16>(b, offsetof(Elf64_Ehdr, e_type), ET_DYN);
  });
  patched("exec-head-saved-phoff-64", "puts program headers at 64, not 128", [&](std::vector<u8> &b) {
    std::memcpy(b.data() + 64, b.data(), 64);
    put<u16>(b, offsetof(Elf64_Ehdr, e_type), ET_DYN);
    put<u64>(b, 64 + offsetof(Elf64_Ehdr, e_phoff), 64);
  });
  patched("e_machine-aarch64", "is not x86-64", [&](std::vector<u8> &b) { put<u16>(b, offsetof(Elf64_Ehdr, e_machine), EM_AARCH64); });
  patched("elfclass32", "not a 64-bit ELF file", [&](std::vector<u8> &b) { b[EI_CLASS] = ELFCLASS32; });
  patched("big-endian", "not a little-endian ELF file", [&](std::vector<u8> &b) { b[EI_DATA] = ELFDATA2MSB; });
  patched("format-major-2", "ckpt format version 2 is not supported", [&](std::vector<u8> &b) { b[kIdentVersionOffset] = 2; });
  patched("phnum-xnum-without-shdr", "no section header 0", [&](std::vector<u8> &b) { put<u16>(b, e_phnum, 0xffff); });

  const u64 f_off = offsetof(Elf64_Phdr, p_offset), f_filesz = offsetof(Elf64_Phdr, p_filesz),
            f_memsz = offsetof(Elf64_Phdr, p_memsz), f_vaddr = offsetof(Elf64_Phdr, p_vaddr),
            f_align = offsetof(Elf64_Phdr, p_align), f_type = offsetof(Elf64_Phdr, p_type);
  // PT_NOTE 0.
  patched("note0-filesz-past-eof", "program header 0: p_offset", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(0, f_filesz), m.size); });
  patched("note0-filesz-huge", "program header 0: p_offset", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(0, f_filesz), ~u64(0) - 8); });
  patched("note0-offset-wraps", "program header 0: p_offset", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(0, f_off), ~u64(0) - 4); });
  patched("note0-filesz-minus-4", "run past the end of its PT_NOTE", [&](std::vector<u8> &b) {
    put<u64>(b, m.phdr_off(0, f_filesz), m.ph[0].p_filesz - 4);
  });
  patched("note0-filesz-minus-last-note", "integrity note lists", [&](std::vector<u8> &b) {
    u64 last = 0;
    for (const auto &n : m.notes)
      if (n.phdr == 0) last = n.size;
    put<u64>(b, m.phdr_off(0, f_filesz), m.ph[0].p_filesz - last);
  });
  patched("note0-filesz-plus-12", "integrity note lists", [&](std::vector<u8> &b) {
    put<u64>(b, m.phdr_off(0, f_filesz), m.ph[0].p_filesz + 12);
  });
  patched("note0-align-3", "PT_NOTE p_align 3", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(0, f_align), 3); });
  patched("note0-align-16", "PT_NOTE p_align 16", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(0, f_align), 16); });
  patched("note0-becomes-load", "program header 0: p_filesz", [&](std::vector<u8> &b) { put<u32>(b, m.phdr_off(0, f_type), PT_LOAD); });
  patched("last-note-becomes-null", "no integrity note", [&](std::vector<u8> &b) { put<u32>(b, m.phdr_off(phnum - 1, f_type), PT_NULL); });
  patched("integrity-filesz-minus-4", "run past the end of its PT_NOTE", [&](std::vector<u8> &b) {
    put<u64>(b, m.phdr_off(phnum - 1, f_filesz), m.integrity_size - 4);
  });
  // Notes whose sizes run past the end of their PT_NOTE.
  for (const auto &n : m.notes) {
    if (n.phdr != 0) continue;
    if (n.type != kNtPrpsinfo && n.type != kNtFile && n.type != static_cast<u32>(CkptNote::Tasks) &&
        n.type != static_cast<u32>(CkptNote::Rlimits))
      continue;
    std::string tag = n.owner + "-" + std::to_string(n.type);
    patched("descsz-huge-" + tag, "run past the end of its PT_NOTE", [&](std::vector<u8> &b) { put<u32>(b, n.offset + 4, 0xfffffff0u); });
    patched("descsz-past-note-" + tag, "run past the end of its PT_NOTE", [&](std::vector<u8> &b) {
      put<u32>(b, n.offset + 4, static_cast<u32>(notes_end - (n.desc_offset) + 1));
    });
    patched("namesz-huge-" + tag, "run past the end of its PT_NOTE", [&](std::vector<u8> &b) { put<u32>(b, n.offset, 0xffffffffu); });
  }
  const Map::N *last0 = nullptr;
  for (const auto &n : m.notes)
    if (n.phdr == 0) last0 = &n;
  if (last0)
    patched("last-note-descsz-plus-4", "run past the end of its PT_NOTE", [&](std::vector<u8> &b) {
      put<u32>(b, last0->offset + 4, static_cast<u32>(last0->desc_size + 4));
    });
  // Table headers of CKPT notes.
  for (CkptNote t : {CkptNote::Identity, CkptNote::Tasks, CkptNote::Threads, CkptNote::Vmas, CkptNote::PageRanges,
                     CkptNote::Fds}) {
    const Map::N *n = m.find(kOwnerCkpt, static_cast<u32>(t));
    if (!n) continue;
    std::string tag = std::to_string(static_cast<u32>(t) & 0xff);
    u64 h = n->desc_offset;
    patched("table" + tag + "-count-huge", "records of", [&](std::vector<u8> &b) {
      put<u32>(b, h + offsetof(TableHeader, record_count), 0xffffffffu);
    });
    patched("table" + tag + "-count-plus-1", "records of", [&](std::vector<u8> &b) {
      put<u32>(b, h + offsetof(TableHeader, record_count), get<u32>(b, h + offsetof(TableHeader, record_count)) + 1);
    });
    patched("table" + tag + "-record-size-4", "record_size 4 is below the minimum", [&](std::vector<u8> &b) {
      put<u32>(b, h + offsetof(TableHeader, record_size), 4);
    });
    patched("table" + tag + "-record-size-huge", "records of 2147483648 bytes", [&](std::vector<u8> &b) {
      put<u32>(b, h + offsetof(TableHeader, record_size), 0x80000000u);
    });
    patched("table" + tag + "-header-size-0", "header_size 0 is out of range", [&](std::vector<u8> &b) {
      put<u32>(b, h + offsetof(TableHeader, header_size), 0);
    });
    patched("table" + tag + "-header-size-huge", "header_size 4294967280 is out of range", [&](std::vector<u8> &b) {
      put<u32>(b, h + offsetof(TableHeader, header_size), 0xfffffff0u);
    });
    patched("table" + tag + "-data-size-huge", "data_size 18446744073709551615 does not match", [&](std::vector<u8> &b) {
      put<u64>(b, h + offsetof(TableHeader, data_size), ~u64(0));
    });
  }
  if (const Map::N *f = m.find(kOwnerCore, kNtFile)) {
    patched("ntfile-count-huge", "NT_FILE claims", [&](std::vector<u8> &b) { put<u64>(b, f->desc_offset, u64(1) << 62); });
    patched("ntfile-count-plus-1", "NT_FILE name 1 is not NUL-terminated", [&](std::vector<u8> &b) {
      put<u64>(b, f->desc_offset, get<u64>(b, f->desc_offset) + 1);
    });
    patched("ntfile-pagesize-0", "NT_FILE page size 0", [&](std::vector<u8> &b) { put<u64>(b, f->desc_offset + 8, 0); });
    patched("ntfile-pagesize-huge", "NT_FILE page size 9223372036854775808", [&](std::vector<u8> &b) { put<u64>(b, f->desc_offset + 8, u64(1) << 63); });
    patched("ntfile-end-before-start", "ends before it starts", [&](std::vector<u8> &b) { put<u64>(b, f->desc_offset + 16 + 8, 0); });
    patched("ntfile-name-unterminated", "is not NUL-terminated", [&](std::vector<u8> &b) {
      // The last name's NUL becomes 'x'.
      b[f->desc_offset + f->desc_size - 1] = 'x';
    });
  }
  if (const Map::N *p = m.find(kOwnerCore, kNtPrstatus))
    patched("prstatus-type-becomes-fpregset-first", "NT_FPREGSET before any NT_PRSTATUS", [&](std::vector<u8> &b) { put<u32>(b, p->offset + 8, kNtFpregset); });
  if (const Map::N *a = m.find(kOwnerCore, kNtAuxv))
    patched("auxv-descsz-minus-8", "run past the end of its PT_NOTE", [&](std::vector<u8> &b) {
      // Shrink desc by 8 and move the following notes? No: the remaining 8
      // bytes would become a bogus note header. Either way it must fail.
      put<u32>(b, a->offset + 4, static_cast<u32>(a->desc_size - 8));
    });
  // PT_LOADs.
  if (phnum >= 4) {
    patched("loads-overlap", "overlap", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(2, f_vaddr), m.ph[1].p_vaddr + 0x1000);
    });
    patched("loads-identical", "overlap", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(2, f_vaddr), m.ph[1].p_vaddr); });
    patched("loads-out-of-order", "not in address order", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(1, f_vaddr), m.ph[2].p_vaddr);
      put<u64>(b, m.phdr_off(2, f_vaddr), m.ph[1].p_vaddr);
    });
    patched("load-filesz-gt-memsz", "program header 1: p_filesz 8192 exceeds p_memsz", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(1, f_memsz), m.ph[1].p_filesz - 0x1000);
    });
    patched("load-filesz-past-eof", "lies past the end of the", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(phnum - 2, f_filesz), m.size);
      put<u64>(b, m.phdr_off(phnum - 2, f_memsz), m.size);
    });
    patched("load-offset-huge", "program header 1: p_offset 18446744073709547520", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(1, f_off), ~u64(0) - 0xfff); });
    patched("load-offset-unaligned", "is not page-aligned", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(1, f_off), m.ph[1].p_offset + 8);
    });
    patched("load-vaddr-wraps", "wraps around", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(phnum - 2, f_vaddr), ~u64(0) - 0xfff);
    });
    patched("load-shares-file-bytes", "describes segment 2 at offset", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(2, f_off), m.ph[1].p_offset);
    });
    patched("load-memsz-huge", "wraps around", [&](std::vector<u8> &b) { put<u64>(b, m.phdr_off(phnum - 2, f_memsz), ~u64(0)); });
  }

  // The zero block and the zero segment that reads it.
  size_t zi = 0;
  for (size_t i = 1; i + 1 < phnum; i++)
    if (m.ph[i].p_vaddr == 0x20000000) zi = i;
  if (zi) {
    const Elf64_Phdr &z = m.ph[zi];
    patched("zero-block-not-zero", "zero block at offset", [&](std::vector<u8> &b) { b[z.p_offset + 100] = 1; });
    patched("zero-segment-outside-block", "integrity note lists", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(zi, f_off), m.ph[1].p_offset);
    });
    patched("zero-segment-past-block", "integrity note lists", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(zi, f_filesz), z.p_filesz + 0x1000);
      put<u64>(b, m.phdr_off(zi, f_memsz), z.p_memsz + 0x1000);
    });
    patched("zero-segment-offset-inside-notes", "integrity note lists", [&](std::vector<u8> &b) {
      put<u64>(b, m.phdr_off(zi, f_off), 0);
    });
  }

  // ---- Semantic damage, written with correct checksums ----------------------
  auto semantic = [&](const std::string &name, const std::string &expect,
                      const std::function<void(std::vector<Note> &, SyntheticImage &)> &f) {
    SyntheticImage copy = im;
    std::vector<Note> notes = copy.notes.encode();
    f(notes, copy);
    std::vector<u8> b = encode_notes(notes, copy);
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

  // ---- A process tree (FORMAT.md §12.1): lying Tree records, resealed so
  // that only the Tree's bounds can catch them, and damage inside an
  // embedded core, which the root's resealed checksums no longer see.
  {
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
}

}  // namespace ckpt::test
