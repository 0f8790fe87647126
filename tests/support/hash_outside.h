// XXH3 of a byte range less the ranges other checksums cover: what the
// Prefix integrity record of index 1 hashes (FORMAT.md §10.2). Written
// here once, from the format's words, for the code that reseals images
// (the fuzzer, the damaged corpus) and for the test that checks the
// writer's streamed Prefix against it; libimg's own streaming computation
// is not used, so that it stays the thing under test. Header-only: the
// fuzz build includes it without the test-support library.
#pragma once

#include <algorithm>
#include <span>
#include <utility>
#include <vector>

#include <xxhash.h>

#include <ckpt/img/format.h>

namespace ckpt::test {

/// XXH3-64 of bytes[pos, end) without the bytes of any range [a, b) of
/// `covered` (in any order; ranges may overlap or reach outside). 0 if
/// XXH3 cannot allocate its state.
inline img::u64 xxh3_outside(std::span<const img::u8> bytes, img::u64 pos, img::u64 end,
                             std::vector<std::pair<img::u64, img::u64>> covered) {
  std::sort(covered.begin(), covered.end());
  XXH3_state_t *st = XXH3_createState();
  if (!st) return 0;
  XXH3_64bits_reset(st);
  for (auto [a, b] : covered) {
    if (a >= end) break;
    if (a > pos) XXH3_64bits_update(st, bytes.data() + pos, a - pos);
    pos = std::max(pos, b);
  }
  if (pos < end) XXH3_64bits_update(st, bytes.data() + pos, end - pos);
  img::u64 h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

}  // namespace ckpt::test
