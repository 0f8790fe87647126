// The damaged corpus: absurd counts, sizes and offsets (damaged_corpus.h).
#include "damaged_corpus_maker.h"

#include <algorithm>
#include <cstddef>
#include <sys/mman.h>

#include <ckpt/img/reader.h>
#include <ckpt/img/table.h>

namespace ckpt::test::corpus {

void absurd_variants(Maker &k) {
  const Map &m = k.m;
  const size_t phnum = k.phnum;
  const u64 notes_end = k.notes_end;
  auto patched = [&k](auto &&...args) { k.patched(std::forward<decltype(args)>(args)...); };
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
}

}  // namespace ckpt::test::corpus
