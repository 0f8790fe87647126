// compare_vdso: an image's vDSO is accepted when its entry points are where
// this kernel's are, and refused, naming the symbol, when one moved.
#include <gtest/gtest.h>

#include <cstring>
#include <elf.h>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "vdso_check.h"

namespace ckpt::reader {
namespace {

using img::u8;

std::vector<u8> own_vdso() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find("[vdso]") == std::string::npos) continue;
    unsigned long start = 0, end = 0;
    std::sscanf(line.c_str(), "%lx-%lx", &start, &end);
    const u8 *p = reinterpret_cast<const u8 *>(start);
    return std::vector<u8>(p, p + (end - start));
  }
  return {};
}

// The file offset of the first defined dynamic symbol's st_value field, and
// its name.
std::pair<size_t, std::string> first_symbol_value(const std::vector<u8> &elf) {
  Elf64_Ehdr eh;
  std::memcpy(&eh, elf.data(), sizeof eh);
  for (int i = 0; i < eh.e_shnum; i++) {
    Elf64_Shdr sh, str;
    std::memcpy(&sh, elf.data() + eh.e_shoff + i * sizeof sh, sizeof sh);
    if (sh.sh_type != SHT_DYNSYM) continue;
    std::memcpy(&str, elf.data() + eh.e_shoff + sh.sh_link * sizeof str, sizeof str);
    for (size_t at = 0; at + sizeof(Elf64_Sym) <= sh.sh_size; at += sizeof(Elf64_Sym)) {
      Elf64_Sym s;
      std::memcpy(&s, elf.data() + sh.sh_offset + at, sizeof s);
      if (s.st_shndx == SHN_UNDEF || s.st_name == 0) continue;
      return {sh.sh_offset + at + offsetof(Elf64_Sym, st_value),
              reinterpret_cast<const char *>(elf.data() + str.sh_offset + s.st_name)};
    }
  }
  return {0, ""};
}

TEST(VdsoCheck, SameVdsoPasses) {
  std::vector<u8> ours = own_vdso();
  ASSERT_FALSE(ours.empty()) << "no [vdso] in /proc/self/maps";
  EXPECT_TRUE(compare_vdso(ours, ours));
}

TEST(VdsoCheck, PatchedCodeWithSameEntryPointsPasses) {
  // CPU-specific alternatives differ inside functions, not between them.
  std::vector<u8> ours = own_vdso(), image = ours;
  ASSERT_FALSE(ours.empty());
  image[image.size() - 1] ^= 0xff;
  EXPECT_TRUE(compare_vdso(image, ours));
}

TEST(VdsoCheck, MovedEntryPointIsRefusedByName) {
  std::vector<u8> ours = own_vdso(), image = ours;
  ASSERT_FALSE(ours.empty());
  auto [at, name] = first_symbol_value(image);
  ASSERT_NE(at, 0u);
  image[at] ^= 0x10;
  img::Status s = compare_vdso(image, ours);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find(name), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("different kernel"), std::string::npos) << s.error().message();
}

TEST(VdsoCheck, GarbageIsRefusedNotRead) {
  std::vector<u8> ours = own_vdso();
  ASSERT_FALSE(ours.empty());
  std::vector<u8> garbage(ours.size(), 0xaa);
  EXPECT_FALSE(compare_vdso(garbage, ours));
  std::vector<u8> truncated(ours.begin(), ours.begin() + 100);
  EXPECT_FALSE(compare_vdso(truncated, ours));
  std::vector<u8> bad_shoff = ours;
  Elf64_Ehdr eh;
  std::memcpy(&eh, bad_shoff.data(), sizeof eh);
  eh.e_shoff = ~0ull - 8;
  std::memcpy(bad_shoff.data(), &eh, sizeof eh);
  EXPECT_FALSE(compare_vdso(bad_shoff, ours));
}

}  // namespace
}  // namespace ckpt::reader
