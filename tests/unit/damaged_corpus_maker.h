// The damaged corpus's makers (damaged_corpus.cc, damaged_corpus_absurd.cc,
// damaged_corpus_semantic.cc): where things are in the good image, and the
// state every maker of variants shares. Private to the corpus.
#pragma once

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <elf.h>

#include <ckpt/img/image_notes.h>

#include "damaged_corpus.h"

namespace ckpt::test::corpus {

using namespace img;

template <typename T>
inline void put(std::vector<u8> &b, u64 off, T v) {
  if (off + sizeof(T) <= b.size()) std::memcpy(b.data() + off, &v, sizeof(T));
}
template <typename T>
inline T get(const std::vector<u8> &b, u64 off) {
  T v{};
  if (off + sizeof(T) <= b.size()) std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
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

bool map_image(const std::vector<u8> &bytes, Map &m);

// What the makers share: the good image, where things are in it, and the
// variant being handed to `visit` (its damaged_at and checksum_only carry
// over from one variant to the next, as they always have).
struct Maker {
  const CorpusOptions &o;
  const SyntheticImage &im;
  const std::vector<u8> &base;
  const Map &m;
  const std::function<void(const Variant &)> &visit;
  size_t phnum;
  u64 notes_off, notes_end;
  Variant v;

  void emit(DamageKind kind, std::string name, std::string expect, std::vector<u8> bytes, bool resealed = false);
  // A patch, both as is (the checksums must catch it) and resealed (the
  // structural checks must).
  // As is, a patch may be caught by a structural check or by the checksum of
  // the bytes it changed; resealed, only by the structural check `expect`.
  void patched(const std::string &name, const std::string &expect,
               const std::function<void(std::vector<u8> &)> &patch, bool also_resealed = true);
};

// Absurd counts, sizes and offsets in headers, notes, tables and PT_LOADs
// (damaged_corpus_absurd.cc).
void absurd_variants(Maker &k);
// Semantic damage written with correct checksums, a lying process tree and
// lying PN_XNUM (damaged_corpus_semantic.cc).
void semantic_variants(Maker &k);
void tree_variants(Maker &k);
void xnum_variants(Maker &k);

}  // namespace ckpt::test::corpus
