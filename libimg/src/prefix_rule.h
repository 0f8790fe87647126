// Which bytes the Prefix integrity record hashes (FORMAT.md §10.2).
#pragma once

#include <xxhash.h>

#include <ckpt/img/format.h>

namespace ckpt::img {

/// The Prefix record's `index`. 0 (written before minor 7): the Prefix
/// hashes every byte before the integrity note. kPrefixOutsideCovered
/// (minor 7): it hashes those bytes except the Segment records' ranges and,
/// in a tree's root, the embedded cores, which their own checksums cover,
/// so each stored byte is hashed once (decision 199).
inline constexpr u32 kPrefixOutsideCovered = 1;

/// Keeps a Prefix state as it is across a write of bytes it leaves out
/// (a skip of zeros inside a segment, an embedded core's hole): the state
/// is copied aside and put back, as XXH3 cannot take bytes out again.
class PrefixPause {
 public:
  explicit PrefixPause(XXH3_state_t *state) : state_(state), saved_(XXH3_createState()) {
    if (saved_) XXH3_copyState(saved_, state_);
  }
  ~PrefixPause() {
    if (saved_) XXH3_copyState(state_, saved_);
    XXH3_freeState(saved_);
  }
  /// False if no copy could be made (out of memory): the caller fails.
  bool ok() const { return saved_ != nullptr; }
  PrefixPause(const PrefixPause &) = delete;
  PrefixPause &operator=(const PrefixPause &) = delete;

 private:
  XXH3_state_t *state_;
  XXH3_state_t *saved_;
};

}  // namespace ckpt::img
