#include <ckpt/img/build_id.h>

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>

namespace ckpt::img {

std::vector<u8> read_build_id(const std::string &path) {
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
      Elf_Data *data = elf_getdata_rawchunk(elf, ph.p_offset, ph.p_filesz, ELF_T_NHDR);
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

}  // namespace ckpt::img
