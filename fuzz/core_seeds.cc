// make_seeds' hand-built cores (seed_output.h): gcore- and kernel-like ELF
// cores written byte by byte, with the odd layouts real cores have (PT_NOTE
// p_align 0/1/4/8, several PT_NOTEs, unnamed notes, unterminated owners,
// empty PT_LOADs, unaligned segment offsets) and the ckpt marker on a plain
// core.
#include <cstring>
#include <string>
#include <vector>

#include <elf.h>

#include <ckpt/img/note.h>

#include "seed_output.h"

using namespace ckpt;
using namespace ckpt::img;

namespace {

struct RawNote {
  std::string name;   // raw name bytes, NUL included when wanted
  u32 type = 0;
  std::vector<u8> desc;
};

struct NoteSeg {
  u64 align = 4;      // p_align; 8 lays notes out with 8-byte padding
  std::vector<RawNote> notes;
  u32 file_align = 4; // where the segment starts in the file
};

struct LoadSeg {
  u64 vaddr = 0, memsz = 0, filesz = 0;
  u32 flags = PF_R;
  u64 align = kPageSize;
  bool page_aligned_offset = true;
};

std::vector<u8> encode_notes(const NoteSeg &s) {
  const u64 a = s.align == 8 ? 8 : 4;
  auto pad = [&](u64 v) { return (v + a - 1) & ~(a - 1); };
  std::vector<u8> out;
  for (const RawNote &n : s.notes) {
    // Header and name, then the desc at the next multiple of a (counting
    // from the note header), then padding to a multiple of a.
    size_t at = out.size();
    u32 h[3] = {static_cast<u32>(n.name.size()), static_cast<u32>(n.desc.size()), n.type};
    size_t desc_at = pad(12 + n.name.size());
    out.resize(at + desc_at + pad(n.desc.size()), 0);
    std::memcpy(out.data() + at, h, 12);
    std::memcpy(out.data() + at + 12, n.name.data(), n.name.size());
    if (!n.desc.empty()) std::memcpy(out.data() + at + desc_at, n.desc.data(), n.desc.size());
  }
  return out;
}

std::vector<u8> build_core(const std::vector<NoteSeg> &notes, const std::vector<LoadSeg> &loads,
                           bool marker = false) {
  auto align_up = [](u64 v, u64 a) { return (v + a - 1) / a * a; };
  const size_t phnum = notes.size() + loads.size();
  std::vector<u8> out(sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr));
  std::vector<Elf64_Phdr> ph;
  for (const NoteSeg &s : notes) {
    std::vector<u8> b = encode_notes(s);
    u64 off = align_up(out.size(), s.file_align);
    out.resize(off, 0);
    out.insert(out.end(), b.begin(), b.end());
    ph.push_back(Elf64_Phdr{PT_NOTE, 0, off, 0, 0, b.size(), 0, s.align});
  }
  for (size_t i = 0; i < loads.size(); i++) {
    const LoadSeg &l = loads[i];
    u64 off = l.page_aligned_offset ? align_up(out.size(), kPageSize) : out.size() + 3;
    out.resize(off, 0);
    for (u64 k = 0; k < l.filesz; k++) out.push_back(static_cast<u8>(k * 13 + i));
    ph.push_back(Elf64_Phdr{PT_LOAD, l.flags, l.filesz ? off : 0, l.vaddr, 0, l.filesz, l.memsz, l.align});
  }
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  if (marker) {
    std::memcpy(eh.e_ident + kIdentMarkerOffset, kIdentMarker, sizeof kIdentMarker);
    eh.e_ident[kIdentVersionOffset] = kFormatMajor;
  }
  eh.e_type = ET_CORE;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = static_cast<u16>(phnum);
  std::memcpy(out.data(), &eh, sizeof eh);
  std::memcpy(out.data() + sizeof eh, ph.data(), ph.size() * sizeof(Elf64_Phdr));
  return out;
}

template <typename T>
std::vector<u8> as_bytes(const T &v) {
  std::vector<u8> b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

RawNote core_note(u32 type, std::vector<u8> desc) { return {std::string("CORE", 5), type, std::move(desc)}; }

/// The standard notes of a process with `threads` threads, in the kernel's
/// order (PRSTATUS, PRPSINFO, SIGINFO, AUXV, FILE, FPREGSET, XSTATE, then the
/// other threads) or gdb's (PRPSINFO first, per thread PRSTATUS, FPREGSET,
/// XSTATE).
std::vector<RawNote> standard_notes(int threads, bool kernel_order) {
  PrPsInfo ps{};
  ps.pr_state = 'R';
  ps.pr_pid = 1000;
  std::strcpy(ps.pr_fname, "seed");
  std::vector<u8> fp(kFpregsetSize, 0), xs(832, 0), si(kSiginfoSize, 0);
  u64 xcr0 = 3;
  std::memcpy(xs.data() + kXstateXcr0Offset, &xcr0, 8);
  std::vector<u64> auxv = {AT_PAGESZ, 4096, AT_NULL, 0};
  Note files = make_nt_file({{0x400000, 0x401000, 0, "/usr/bin/seed"}, {0x7f0000000000, 0x7f0000002000, 8192, "/lib/x.so"}});
  Note nauxv = make_nt_auxv(auxv);
  auto prstatus = [&](int t) {
    PrStatus st{};
    st.pr_pid = 1000 + t;
    st.pr_reg.rip = 0x400100 + t;
    st.pr_reg.cs = 0x33;
    return as_bytes(st);
  };
  std::vector<RawNote> out;
  auto regs = [&](int t) {
    out.push_back(core_note(kNtFpregset, fp));
    out.push_back({std::string("LINUX", 6), kNtX86Xstate, xs});
  };
  if (kernel_order) {
    out.push_back(core_note(kNtPrstatus, prstatus(0)));
    out.push_back(core_note(kNtPrpsinfo, as_bytes(ps)));
    out.push_back(core_note(kNtSiginfo, si));
    out.push_back(core_note(kNtAuxv, nauxv.desc));
    out.push_back(core_note(kNtFile, files.desc));
    regs(0);
    for (int t = 1; t < threads; t++) {
      out.push_back(core_note(kNtPrstatus, prstatus(t)));
      regs(t);
    }
  } else {
    out.push_back(core_note(kNtPrpsinfo, as_bytes(ps)));
    for (int t = 0; t < threads; t++) {
      out.push_back(core_note(kNtPrstatus, prstatus(t)));
      regs(t);
    }
    out.push_back(core_note(kNtSiginfo, si));
    out.push_back(core_note(kNtAuxv, nauxv.desc));
    out.push_back(core_note(kNtFile, files.desc));
  }
  return out;
}

std::vector<LoadSeg> some_loads(bool page_aligned = true) {
  return {
      {0x400000, 0x1000, 0x1000, PF_R | PF_X, kPageSize, page_aligned},
      {0x401000, 0x2000, 0, PF_R, kPageSize, page_aligned},  // not dumped, as gcore leaves r/o file maps
      {0x7f0000000000, 0x2000, 0x800, PF_R | PF_W, 1, page_aligned},
  };
}

}  // namespace

void fuzz::core_seeds() {
  emit_image("core-kernel-align4", build_core({{4, standard_notes(2, true)}}, some_loads()));
  emit_image("core-kernel-align0", build_core({{0, standard_notes(1, true)}}, some_loads()));
  emit_image("core-gdb-align1", build_core({{1, standard_notes(3, false)}}, some_loads(false)));
  // 8-byte note padding, as for NT_GNU_PROPERTY_TYPE_0 (LLVM >= 15 and
  // elfutils read p_align 8 that way).
  emit_image("core-notes-align8",
             build_core({{8, {core_note(kNtPrpsinfo, std::vector<u8>(sizeof(PrPsInfo), 1)),
                              {std::string("GNU", 4), 5, std::vector<u8>(12, 2)},
                              core_note(kNtPrstatus, std::vector<u8>(sizeof(PrStatus), 0)),
                              {std::string("LINUX", 6), kNtX86Xstate, std::vector<u8>(576, 0)}},
                          8}},
                        some_loads()));
  // Two PT_NOTEs; the second has odd notes: no name, an unterminated owner,
  // an empty desc, a name of exactly a NUL.
  emit_image("core-two-notes",
             build_core({{4, standard_notes(1, true)},
                         {4,
                          {{"", 7, {1, 2, 3}},
                           {"ABCDE", 9, {4, 5, 6, 7, 8}},
                           {std::string("CKPT", 5), static_cast<u32>(CkptNote::Tree), {}},
                           {std::string(1, '\0'), 1, {}}}}},
                        some_loads()));
  // A PT_NOTE at an odd file offset, and no PT_LOAD at all.
  emit_image("core-odd-note-offset", build_core({{0, standard_notes(1, true), 1}}, {}));
  // Only PT_LOADs.
  emit_image("core-loads-only", build_core({}, some_loads()));
  // An empty PT_NOTE and an empty core.
  emit_image("core-empty-note", build_core({{4, {}}}, {}));
  // The marker on a core that is otherwise plain: a damaged ckpt image.
  emit_image("core-marker-only", build_core({{4, standard_notes(1, true)}}, some_loads(), true));
}

