// Checksums over runs of zero bytes, streamed from one static page of
// zeros: the writer hashes holes it never writes, and verify checks a
// declared zero block without allocating it (its size comes from the file).
#pragma once

#include <algorithm>

#include <xxhash.h>

#include <ckpt/img/format.h>

namespace ckpt::img {

inline void hash_zeros(XXH3_state_t *state, u64 n) {
  static const u8 zeros[65536] = {};
  for (u64 left = n; left;) {
    u64 k = std::min<u64>(left, sizeof zeros);
    XXH3_64bits_update(state, zeros, k);
    left -= k;
  }
}

/// xxh3-64 of n zero bytes.
inline u64 zeros_xxh3(u64 n) {
  XXH3_state_t *state = XXH3_createState();
  if (!state) return 0;
  XXH3_64bits_reset(state);
  hash_zeros(state, n);
  u64 h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return h;
}

}  // namespace ckpt::img
