// The damaged corpus: variants of one good synthetic image, each of which a
// reader must refuse (imgtool verify and imgtool info both exit 1 with one
// line). Shared by damaged_test.cc and the seed generator
// make_damaged_corpus (whose output, committed under tests/corpus/damaged/,
// seeds the fuzzers).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "synthetic.h"

namespace ckpt::test {

enum class DamageKind {
  Truncated,   ///< cut at a header or segment boundary
  Flipped,     ///< one byte changed; only the checksums can tell
  Absurd,      ///< a count, size or offset patched to a lie
  Semantic,    ///< well-formed and correctly checksummed, but inconsistent
  Xnum,        ///< a lying PN_XNUM extension
};

struct Variant {
  std::string name;          ///< unique, usable as a file name
  DamageKind kind;
  bool resealed = false;     ///< checksums recomputed after the damage
  std::vector<uint8_t> bytes;
  /// What the refusal must say, so that a variant refused for an unrelated
  /// reason fails the test: alternatives separated by '|', one of which
  /// must be a substring of the error. Empty for flipped bytes, which are
  /// judged by where they are (damaged_at, checksum_only).
  std::string expect;
  uint64_t damaged_at = 0;   ///< Flipped: the offset of the changed byte
  /// Flipped: the byte is memory or padding, which only a checksum covers;
  /// header, note and integrity bytes may fail a structural check first.
  bool checksum_only = false;
};

/// "" if `error` (non-empty) refuses `v` for its own damage, else what is
/// wrong with the refusal. A checksum mismatch must name a byte range that
/// holds a flipped byte.
std::string refusal_mismatch(const Variant &v, const std::string &error);

struct CorpusOptions {
  SyntheticOptions base;         ///< the good image everything derives from
  bool every_flip = true;        ///< flip every header/note byte (else a sample)
  uint32_t data_stride = 61;    ///< stride of flips through data and padding
  bool xnum = true;              ///< include PN_XNUM variants (3.7 MB each)
};

/// The options the committed seeds (tests/corpus/damaged/) are made with:
/// a small base image, a sample of flips, no PN_XNUM variants (3.7 MB each).
CorpusOptions seed_corpus_options();

/// The good image the corpus is made from (synthetic + an NT_FILE note).
SyntheticImage corpus_base_image(const SyntheticOptions &o);

/// Calls `visit` once per damaged variant. Variants are produced one at a
/// time so the whole corpus never sits in memory.
void for_each_variant(const CorpusOptions &options, const std::function<void(const Variant &)> &visit);

/// Recomputes every checksum of the integrity note at `integrity_offset` so
/// that only structural checks can catch the damage. Returns false if the
/// note cannot be found there.
bool reseal(std::vector<uint8_t> &bytes, uint64_t integrity_offset);

const char *kind_name(DamageKind k);

}  // namespace ckpt::test
