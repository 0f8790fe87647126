#include <ckpt/img/note.h>

#include <cstring>
#include <elf.h>

namespace ckpt::img {

static u64 pad4(u64 n) { return (n + 3) & ~u64(3); }

u64 Note::desc_offset() const { return sizeof(Elf64_Nhdr) + pad4(owner.size() + 1); }

u64 Note::encoded_size() const { return desc_offset() + pad4(desc.size()); }

void Note::encode_to(std::vector<u8> &out) const {
  Elf64_Nhdr hdr{static_cast<u32>(owner.size() + 1), static_cast<u32>(desc.size()), type};
  size_t at = out.size();
  out.resize(at + encoded_size(), 0);
  std::memcpy(out.data() + at, &hdr, sizeof hdr);
  std::memcpy(out.data() + at + sizeof hdr, owner.data(), owner.size());
  if (!desc.empty()) std::memcpy(out.data() + at + desc_offset(), desc.data(), desc.size());
}

Note make_nt_file(const std::vector<FileMapping> &files) {
  std::vector<u64> words = {files.size(), kPageSize};
  for (const FileMapping &f : files) {
    words.push_back(f.start);
    words.push_back(f.end);
    words.push_back(f.offset / kPageSize);
  }
  Note n{kOwnerCore, kNtFile, std::vector<u8>(words.size() * 8)};
  std::memcpy(n.desc.data(), words.data(), n.desc.size());
  for (const FileMapping &f : files) {
    n.desc.insert(n.desc.end(), f.path.begin(), f.path.end());
    n.desc.push_back(0);
  }
  return n;
}

Expected<std::vector<FileMapping>> decode_nt_file(std::span<const u8> desc) {
  if (desc.size() < 16) return make_error("NT_FILE of %zu bytes is shorter than its 16-byte header", desc.size());
  u64 count, page_size;
  std::memcpy(&count, desc.data(), 8);
  std::memcpy(&page_size, desc.data() + 8, 8);
  if (count > (desc.size() - 16) / 24)
    return make_error("NT_FILE claims %llu entries but has room for %zu",
                      (unsigned long long)count, (desc.size() - 16) / 24);
  if (page_size == 0 || (page_size & (page_size - 1)) || page_size > (1u << 30))
    return make_error("NT_FILE page size %llu is not a power of two up to 1 GiB", (unsigned long long)page_size);
  std::vector<FileMapping> out(count);
  size_t names = 16 + count * 24;
  for (u64 i = 0; i < count; i++) {
    u64 w[3];
    std::memcpy(w, desc.data() + 16 + i * 24, 24);
    if (w[2] > UINT64_MAX / page_size)
      return make_error("NT_FILE entry %llu has a file offset that overflows", (unsigned long long)i);
    if (w[0] > w[1]) return make_error("NT_FILE entry %llu ends before it starts", (unsigned long long)i);
    out[i].start = w[0];
    out[i].end = w[1];
    out[i].offset = w[2] * page_size;
    const u8 *nul = static_cast<const u8 *>(std::memchr(desc.data() + names, 0, desc.size() - names));
    if (!nul) return make_error("NT_FILE name %llu is not NUL-terminated", (unsigned long long)i);
    out[i].path.assign(reinterpret_cast<const char *>(desc.data() + names), nul - (desc.data() + names));
    names = nul - desc.data() + 1;
  }
  return out;
}

Note make_nt_auxv(std::span<const u64> words) {
  Note n{kOwnerCore, kNtAuxv, std::vector<u8>(words.size() * 8)};
  if (!words.empty()) std::memcpy(n.desc.data(), words.data(), n.desc.size());
  return n;
}

}  // namespace ckpt::img
