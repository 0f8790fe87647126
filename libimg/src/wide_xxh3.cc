#include "wide_xxh3.h"

// The shared libxxhash (Debian's 0.8.x) is built for baseline x86-64, so
// XXH3_64bits_update runs on SSE2: 0.064 s per GiB here, against 0.020 s
// through the library's own CPU dispatcher (AVX-512 on this machine; the
// values are identical, the vector unit only changes the speed). The
// dispatcher is in the shared library only: the static libxxhash.a the
// launcher links has no *_dispatch symbols, so it is referenced weakly and
// a static link falls back to the plain function. The fuzz build compiles
// xxhash inline into libimg (XXH_INLINE_ALL) so that ASan sees the bytes:
// there the plain, instrumented function is used.
#if !defined(XXH_INLINE_ALL) && defined(__x86_64__) && __has_include(<xxh_x86dispatch.h>)
#define CKPT_XXH3_DISPATCH 1
#define XXH_DISPATCH_DISABLE_REPLACE
#include <xxh_x86dispatch.h>
#pragma weak XXH3_64bits_update_dispatch
#endif

namespace ckpt::img {

void xxh3_update_wide(XXH3_state_t *state, const void *data, size_t len) {
#ifdef CKPT_XXH3_DISPATCH
  // Null where the linked libxxhash has no dispatcher (a static link).
  auto *dispatch = &XXH3_64bits_update_dispatch;
  if (dispatch) {
    dispatch(state, data, len);
    return;
  }
#endif
  XXH3_64bits_update(state, data, len);
}

bool xxh3_wide_dispatches() {
#ifdef CKPT_XXH3_DISPATCH
  return &XXH3_64bits_update_dispatch != nullptr;
#else
  return false;
#endif
}

}  // namespace ckpt::img
