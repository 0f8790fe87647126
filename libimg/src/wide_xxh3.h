// xxh3_update_wide: XXH3_64bits_update on the widest vector unit the CPU
// has, for the bulk bytes a dump checksums (decision 214).
#pragma once

#include <cstddef>

#include <xxhash.h>

namespace ckpt::img {

/// Adds len bytes to an XXH3-64 state, exactly as XXH3_64bits_update does
/// (the same state, the same digest), but with AVX2 or AVX-512 where the
/// CPU and the linked libxxhash offer them; otherwise it is
/// XXH3_64bits_update itself.
void xxh3_update_wide(XXH3_state_t *state, const void *data, size_t len);

/// Whether xxh3_update_wide goes through libxxhash's dispatcher here (the
/// shared library with xxh_x86dispatch.h), not the plain function.
bool xxh3_wide_dispatches();

}  // namespace ckpt::img
