// read_build_id reads ELF headers with pread (decision 191): it must give
// what libelf gives for the binaries a process maps, and find the note
// where it lies outside the first 4 KiB, in an 8-aligned note segment, or
// behind PN_XNUM.
#include <gtest/gtest.h>

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <ckpt/img/build_id.h>

#include "subprocess.h"

namespace ckpt::img {
namespace {

using ckpt::test::TempDir;

// The reference: libelf's reading, as read_build_id did before.
std::vector<u8> libelf_build_id(const std::string &path) {
  std::vector<u8> id;
  if (elf_version(EV_CURRENT) == EV_NONE) return id;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return id;
  Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  size_t phnum = 0;
  if (elf && elf_kind(elf) == ELF_K_ELF && elf_getphdrnum(elf, &phnum) == 0) {
    for (size_t i = 0; i < phnum && id.empty(); i++) {
      GElf_Phdr ph;
      if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_NOTE) continue;
      Elf_Data *data =
          elf_getdata_rawchunk(elf, ph.p_offset, ph.p_filesz, ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
      if (!data) continue;
      GElf_Nhdr nh;
      size_t off = 0, name_off, desc_off;
      while ((off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
        const char *base = static_cast<const char *>(data->d_buf);
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && std::memcmp(base + name_off, "GNU", 4) == 0) {
          id.assign(base + desc_off, base + desc_off + nh.n_descsz);
          break;
        }
      }
    }
  }
  if (elf) elf_end(elf);
  close(fd);
  return id;
}

// The files this test process maps (its executable and libraries).
std::set<std::string> mapped_files() {
  std::set<std::string> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    size_t slash = line.find('/');
    if (slash != std::string::npos && line.find(" (deleted)") == std::string::npos) out.insert(line.substr(slash));
  }
  return out;
}

TEST(BuildId, SameAsLibelfForEveryMappedBinary) {
  std::set<std::string> files = mapped_files();
  for (const char *more : {"/usr/bin/python3", "/bin/sh", "/usr/bin/gdb"})
    if (access(more, R_OK) == 0) files.insert(more);
  size_t with_id = 0;
  for (const std::string &f : files) {
    std::vector<u8> want = libelf_build_id(f);
    EXPECT_EQ(read_build_id(f), want) << f;
    with_id += !want.empty();
  }
  // Debian builds every binary with a build-id.
  EXPECT_GE(with_id, 3u);
}

TEST(BuildId, NotElfOrMissingGivesNone) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  std::string text = tmp.file("text");
  std::ofstream(text) << "#!/bin/sh\necho hi\n";
  EXPECT_TRUE(read_build_id(text).empty());
  EXPECT_TRUE(read_build_id(tmp.file("missing")).empty());
  // An ELF header cut short.
  std::string cut = tmp.file("cut");
  std::ofstream(cut) << std::string(ELFMAG) + "\2\1\1";
  EXPECT_TRUE(read_build_id(cut).empty());
}

// A minimal ELF64 file: program headers at `phoff`, one PT_NOTE (aligned
// `align`) at `notes_at` holding a property-like note of `first_desc`
// bytes before the build-id note, and optionally e_phnum = PN_XNUM with
// the count in section header 0.
std::string synthetic_elf(u64 phoff, u64 notes_at, u64 align, u32 first_desc, bool xnum,
                          const std::vector<u8> &id) {
  std::string file(std::max(notes_at, phoff) + 4096, '\0');
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_DYN;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_ehsize = sizeof eh;
  eh.e_phoff = phoff;
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = xnum ? PN_XNUM : 1;
  if (xnum) {
    eh.e_shoff = 256;
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = 1;
    Elf64_Shdr sh0{};
    sh0.sh_info = 1;
    std::memcpy(&file[eh.e_shoff], &sh0, sizeof sh0);
  }
  std::memcpy(&file[0], &eh, sizeof eh);
  std::string notes;
  auto pad = [&](std::string &s) {
    while (s.size() % align) s.push_back('\0');
  };
  auto add_note = [&](u32 type, const std::string &name, const std::string &desc) {
    u32 h[3] = {u32(name.size()), u32(desc.size()), type};
    notes.append(reinterpret_cast<const char *>(h), sizeof h);
    notes += name;
    pad(notes);
    notes += desc;
    pad(notes);
  };
  add_note(NT_GNU_PROPERTY_TYPE_0, std::string("GNU\0", 4), std::string(first_desc, 'p'));
  add_note(NT_GNU_BUILD_ID, std::string("GNU\0", 4), std::string(id.begin(), id.end()));
  std::memcpy(&file[notes_at], notes.data(), notes.size());
  Elf64_Phdr ph{};
  ph.p_type = PT_NOTE;
  ph.p_offset = notes_at;
  ph.p_filesz = ph.p_memsz = notes.size();
  ph.p_align = align;
  std::memcpy(&file[phoff], &ph, sizeof ph);
  return file;
}

TEST(BuildId, FoundOutsideTheFirstBlockInEightAlignedNotesAndBehindPnXnum) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  std::vector<u8> id = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
  struct Case {
    u64 phoff, notes_at, align;
    u32 first_desc;
    bool xnum;
  } cases[] = {
      {64, 512, 4, 12, false},       // all in the first 4 KiB
      {64, 9000, 4, 12, false},      // the notes past it
      {12288, 512, 4, 12, false},    // the program headers past it
      {64, 512, 8, 12, false},       // 8-aligned: the property's desc padded to 16
      {64, 8192, 8, 20, false},      // and past the first block
      {64, 512, 4, 8, true},         // PN_XNUM
  };
  for (const Case &c : cases) {
    std::string path = tmp.file("synthetic");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << synthetic_elf(c.phoff, c.notes_at, c.align, c.first_desc, c.xnum, id);
    SCOPED_TRACE("phoff " + std::to_string(c.phoff) + " notes at " + std::to_string(c.notes_at) + " align " +
                 std::to_string(c.align) + (c.xnum ? " PN_XNUM" : ""));
    EXPECT_EQ(read_build_id(path), id);
    EXPECT_EQ(read_build_id(path), libelf_build_id(path));
  }
}

}  // namespace
}  // namespace ckpt::img
