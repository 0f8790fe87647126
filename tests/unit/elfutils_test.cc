// Cross-check: elfutils' libelf, used directly, sees the same program headers
// and notes in an image as ImageReader does (normal and PN_XNUM images).
#include <gtest/gtest.h>

#include <cstring>
#include <gelf.h>
#include <libelf.h>
#include <string>
#include <vector>

#include <ckpt/img/reader.h>

#include "synthetic.h"

using namespace ckpt::img;

namespace {

struct SeenNote {
  std::string owner;
  u32 type;
  std::vector<u8> desc;
  u32 phdr;
};

// Everything libelf reports, read with the API a core consumer uses.
struct LibelfView {
  size_t phnum = 0;
  std::vector<GElf_Phdr> phdrs;
  std::vector<SeenNote> notes;
  std::string error;
};

LibelfView read_with_libelf(std::vector<u8> &bytes) {
  LibelfView v;
  if (elf_version(EV_CURRENT) == EV_NONE) {
    v.error = "elf_version";
    return v;
  }
  Elf *elf = elf_memory(reinterpret_cast<char *>(bytes.data()), bytes.size());
  if (!elf) {
    v.error = std::string("elf_memory: ") + elf_errmsg(-1);
    return v;
  }
  if (elf_kind(elf) != ELF_K_ELF) v.error = "not ELF_K_ELF";
  GElf_Ehdr eh;
  if (v.error.empty() && (!gelf_getehdr(elf, &eh) || eh.e_type != ET_CORE)) v.error = "gelf_getehdr / not ET_CORE";
  if (v.error.empty() && elf_getphdrnum(elf, &v.phnum) != 0) v.error = std::string("elf_getphdrnum: ") + elf_errmsg(-1);
  for (size_t i = 0; v.error.empty() && i < v.phnum; i++) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf, static_cast<int>(i), &ph)) {
      v.error = "gelf_getphdr " + std::to_string(i) + ": " + elf_errmsg(-1);
      break;
    }
    v.phdrs.push_back(ph);
    if (ph.p_type != PT_NOTE) continue;
    Elf_Type type = ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR;
    Elf_Data *data = elf_getdata_rawchunk(elf, ph.p_offset, ph.p_filesz, type);
    if (!data) {
      v.error = "elf_getdata_rawchunk " + std::to_string(i) + ": " + elf_errmsg(-1);
      break;
    }
    size_t off = 0, name_off, desc_off;
    GElf_Nhdr nh;
    while (off < data->d_size) {
      size_t next = gelf_getnote(data, off, &nh, &name_off, &desc_off);
      if (next == 0) {
        v.error = "gelf_getnote failed at " + std::to_string(off) + " in phdr " + std::to_string(i);
        break;
      }
      const char *base = static_cast<const char *>(data->d_buf);
      std::string owner(base + name_off, nh.n_namesz ? strnlen(base + name_off, nh.n_namesz) : 0);
      std::vector<u8> desc(base + desc_off, base + desc_off + nh.n_descsz);
      v.notes.push_back({owner, nh.n_type, std::move(desc), static_cast<u32>(i)});
      off = next;
    }
  }
  elf_end(elf);
  return v;
}

void cross_check(std::vector<u8> bytes, size_t want_phnum) {
  auto r = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(r) << r.error().message();
  LibelfView v = read_with_libelf(bytes);
  ASSERT_EQ(v.error, "");
  ASSERT_EQ(v.phnum, want_phnum);
  ASSERT_EQ(r->phdrs().size(), want_phnum);
  for (size_t i = 0; i < want_phnum; i++) {
    const Elf64_Phdr &a = r->phdrs()[i];
    const GElf_Phdr &b = v.phdrs[i];
    ASSERT_EQ(a.p_type, b.p_type) << i;
    ASSERT_EQ(a.p_flags, b.p_flags) << i;
    ASSERT_EQ(a.p_offset, b.p_offset) << i;
    ASSERT_EQ(a.p_vaddr, b.p_vaddr) << i;
    ASSERT_EQ(a.p_paddr, b.p_paddr) << i;
    ASSERT_EQ(a.p_filesz, b.p_filesz) << i;
    ASSERT_EQ(a.p_memsz, b.p_memsz) << i;
    ASSERT_EQ(a.p_align, b.p_align) << i;
  }
  const auto &ours = r->notes();
  ASSERT_EQ(v.notes.size(), ours.size());
  ASSERT_GT(ours.size(), 10u);
  for (size_t i = 0; i < ours.size(); i++) {
    EXPECT_EQ(v.notes[i].owner, ours[i].owner) << "note " << i;
    EXPECT_EQ(v.notes[i].type, ours[i].type) << "note " << i;
    EXPECT_EQ(v.notes[i].phdr, ours[i].phdr) << "note " << i;
    EXPECT_TRUE(v.notes[i].desc == std::vector<u8>(ours[i].desc.begin(), ours[i].desc.end())) << "note " << i;
  }
}

}  // namespace

TEST(Libelf, SameHeadersAndNotesNormal) {
  auto im = ckpt::test::make_synthetic_with_files();
  auto bytes = ckpt::test::encode_image(im);
  ASSERT_FALSE(bytes.empty());
  cross_check(bytes, im.segments.size() + 2);
}

TEST(Libelf, SameHeadersAndNotesPnXnum) {
  ckpt::test::SyntheticOptions o;
  o.extra_segments = 65540;
  auto im = ckpt::test::make_synthetic(o);
  auto bytes = ckpt::test::encode_image(im);
  ASSERT_FALSE(bytes.empty());
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof eh);
  ASSERT_EQ(eh.e_phnum, PN_XNUM);
  cross_check(bytes, im.segments.size() + 2);
}

TEST(Libelf, NoMarkerImageReadsTheSame) {
  ckpt::test::SyntheticOptions o;
  o.ckpt_marker = false;
  auto bytes = ckpt::test::encode_image(ckpt::test::make_synthetic(o), false);
  ASSERT_FALSE(bytes.empty());
  cross_check(bytes, o.segments + 2);
}
