// xxh3_update_wide (libimg/src/wide_xxh3.h, decision 214) must give the
// very digest XXH3_64bits gives: the Segment records of every image are
// these values, and a reader built against a static libxxhash (the
// launcher) checks them with the plain function. The vector loops of
// XXH3 have their own paths for the stripe and block boundaries and for
// the bytes kept in the state between updates, so lengths around those
// sizes are fed whole, in uneven pieces and from unaligned addresses.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include <xxhash.h>

#include "wide_xxh3.h"

namespace {

using ckpt::img::xxh3_update_wide;
using ckpt::img::xxh3_wide_dispatches;

std::vector<unsigned char> pattern(size_t n) {
  std::vector<unsigned char> b(n);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    b[i] = static_cast<unsigned char>(x);
  }
  return b;
}

uint64_t wide_digest(const unsigned char *p, size_t n, size_t piece) {
  XXH3_state_t *s = XXH3_createState();
  XXH3_64bits_reset(s);
  for (size_t at = 0; at < n; at += piece) xxh3_update_wide(s, p + at, std::min(piece, n - at));
  uint64_t d = XXH3_64bits_digest(s);
  XXH3_freeState(s);
  return d;
}

// The build links the shared libxxhash, whose dispatcher the wide path
// must use here: otherwise the comparison below compares the plain
// function with itself.
#if defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
TEST(WideXxh3, UsesTheDispatcherOfTheSharedLibrary) { EXPECT_TRUE(xxh3_wide_dispatches()); }
#endif

TEST(WideXxh3, SameDigestAsXxh3ForEveryLengthPieceAndAlignment) {
  const std::vector<unsigned char> bytes = pattern((4u << 20) + 64);
  // 0-300 covers the short-input paths and a stripe (64) and the state's
  // internal buffer (256) boundaries; 1024 is a block of the default
  // secret; 4096 a page; the last ones several blocks and buffer refills.
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 300; n++) lengths.push_back(n);
  for (size_t n : {1023u, 1024u, 1025u, 4095u, 4096u, 4097u, 65536u + 17u, (1u << 20) + 3u, 4u << 20})
    lengths.push_back(n);
  for (size_t offset : {0u, 1u, 13u, 64u}) {
    for (size_t n : lengths) {
      const unsigned char *p = bytes.data() + offset;
      uint64_t want = XXH3_64bits(p, n);
      for (size_t piece : {n ? n : 1, size_t(1), size_t(7), size_t(64), size_t(255), size_t(4096), size_t(1u << 18)}) {
        if (piece < 64 && n > 8192) continue;  // byte-sized pieces of megabytes add time, not paths
        ASSERT_EQ(wide_digest(p, n, piece), want) << "length " << n << " in pieces of " << piece << " from offset "
                                                  << offset;
      }
    }
  }
}

}  // namespace
