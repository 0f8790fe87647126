// Bump allocator over the restorer region's argument area: rs_args and
// every array it points to live there (reader/restorer/abi.h).
#pragma once

#include <cstddef>

#include <ckpt/img/format.h>

namespace ckpt::reader {

struct ArgArena {
  img::u8 *base = nullptr;
  img::u64 size = 0, used = 0;
  /// n objects of T, aligned; nullptr once the area is exhausted.
  template <typename T>
  T *alloc(size_t n = 1, size_t align = alignof(T)) {
    used = (used + align - 1) & ~img::u64(align - 1);
    T *p = reinterpret_cast<T *>(base + used);
    used += sizeof(T) * n;
    return used <= size ? p : nullptr;
  }
};

}  // namespace ckpt::reader
