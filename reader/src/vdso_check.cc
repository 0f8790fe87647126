#include "vdso_check.h"

#include <cstring>
#include <elf.h>
#include <map>
#include <string>

#include "self_maps.h"

namespace ckpt::reader {

using namespace img;

namespace {

struct Symbol {
  u64 value = 0, size = 0;
};

// The defined dynamic symbols of an ELF64 image in memory, every offset
// bounds-checked (the image's vDSO is data from a file).
Expected<std::map<std::string, Symbol>> dynamic_symbols(std::span<const u8> elf, const char *which) {
  auto bad = [&](const char *what) { return make_error("the %s vDSO is not a readable ELF image (%s)", which, what); };
  Elf64_Ehdr eh;
  if (elf.size() < sizeof eh) return bad("too short");
  std::memcpy(&eh, elf.data(), sizeof eh);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64) return bad("no ELF64 header");
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shoff > elf.size() ||
      u64(eh.e_shnum) * sizeof(Elf64_Shdr) > elf.size() - eh.e_shoff)
    return bad("section headers out of bounds");
  auto section = [&](u32 i) {
    Elf64_Shdr sh;
    std::memcpy(&sh, elf.data() + eh.e_shoff + u64(i) * sizeof sh, sizeof sh);
    return sh;
  };
  std::map<std::string, Symbol> out;
  for (u32 i = 0; i < eh.e_shnum; i++) {
    Elf64_Shdr sh = section(i);
    if (sh.sh_type != SHT_DYNSYM) continue;
    if (sh.sh_link >= eh.e_shnum) return bad("dynsym names no string table");
    Elf64_Shdr str = section(sh.sh_link);
    if (sh.sh_offset > elf.size() || sh.sh_size > elf.size() - sh.sh_offset || str.sh_offset > elf.size() ||
        str.sh_size > elf.size() - str.sh_offset)
      return bad("dynsym or its strings out of bounds");
    for (u64 at = 0; at + sizeof(Elf64_Sym) <= sh.sh_size; at += sizeof(Elf64_Sym)) {
      Elf64_Sym s;
      std::memcpy(&s, elf.data() + sh.sh_offset + at, sizeof s);
      if (s.st_shndx == SHN_UNDEF || s.st_name >= str.sh_size) continue;
      const char *name = reinterpret_cast<const char *>(elf.data() + str.sh_offset + s.st_name);
      std::string n(name, strnlen(name, str.sh_size - s.st_name));
      if (!n.empty()) out[n] = {s.st_value, s.st_size};
    }
  }
  if (out.empty()) return bad("no dynamic symbols");
  return out;
}

}  // namespace

Status compare_vdso(std::span<const u8> image_vdso, std::span<const u8> ours) {
  if (image_vdso.size() == ours.size() && std::memcmp(image_vdso.data(), ours.data(), ours.size()) == 0) return {};
  auto theirs = dynamic_symbols(image_vdso, "image's");
  if (!theirs) return theirs.error();
  auto mine = dynamic_symbols(ours, "running kernel's");
  if (!mine) return mine.error();
  for (const auto &[name, sym] : *theirs) {
    auto it = mine->find(name);
    if (it == mine->end())
      return make_error("this kernel's vDSO has no %s, which the image's has (a different kernel; restore on the one "
                        "that dumped it)", name.c_str());
    if (it->second.value != sym.value)
      return make_error("this kernel's vDSO has %s at offset 0x%llx, the image's at 0x%llx (a different kernel; "
                        "restore on the one that dumped it)",
                        name.c_str(), (unsigned long long)it->second.value, (unsigned long long)sym.value);
  }
  return {};
}

Status check_vdso_matches(const ImageReader &image, const CkptView &v, const std::vector<SelfMapping> &self) {
  const VmaRecord *vdso = nullptr;
  for (const VmaRecord &m : v.vmas.records)
    if (static_cast<VmaKind>(m.kind) == VmaKind::Vdso) vdso = &m;
  if (!vdso) return {};
  auto stored = image.read_memory(vdso->start, vdso->end - vdso->start);
  if (!stored) return stored.error().context("the image's [vdso]");
  for (const SelfMapping &m : self)
    if (m.name == "[vdso]")
      return compare_vdso(*stored, std::span<const u8>(reinterpret_cast<const u8 *>(m.start), m.end - m.start));
  return make_error("this process has no [vdso] to compare the image's with");
}

}  // namespace ckpt::reader
