// Notes as values, and encoders for the standard Linux core notes.
#pragma once

#include <array>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/format.h>

namespace ckpt::img {

/// One ELF note: owner name (without NUL), type and desc bytes.
struct Note {
  std::string owner;
  u32 type = 0;
  std::vector<u8> desc;

  /// Bytes the note takes in a PT_NOTE: 12-byte header (Elf64_Nhdr), name
  /// with NUL and desc, each padded to 4.
  u64 encoded_size() const;
  /// Where the desc starts in the encoded note: after the header and the
  /// padded name.
  u64 desc_offset() const;
  /// Appends the encoded note to out.
  void encode_to(std::vector<u8> &out) const;
};

template <typename T>
Note make_struct_note(const char *owner, u32 type, const T &value) {
  Note n{owner, type, std::vector<u8>(sizeof(T))};
  std::memcpy(n.desc.data(), &value, sizeof(T));
  return n;
}

inline Note make_ckpt_note(CkptNote type, std::vector<u8> desc) {
  return Note{kOwnerCkpt, static_cast<u32>(type), std::move(desc)};
}

/// One entry of NT_FILE.
struct FileMapping {
  u64 start = 0;
  u64 end = 0;
  u64 offset = 0;       ///< in bytes (NT_FILE stores pages)
  std::string path;
};

Note make_nt_file(const std::vector<FileMapping> &files);
Expected<std::vector<FileMapping>> decode_nt_file(std::span<const u8> desc);

/// NT_AUXV from (type, value) pairs; the AT_NULL terminator is included.
Note make_nt_auxv(std::span<const u64> words);

}  // namespace ckpt::img
