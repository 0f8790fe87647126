// The references every CKPT table record uses into its note's data area
// (docs/FORMAT.md §8.2). Part of records.h, which is what code includes.
#pragma once

#include <ckpt/img/format.h>

namespace ckpt::img {

/// A string in a table note's data area (not NUL-terminated).
struct StrRef {
  u32 offset = 0;
  u32 length = 0;
};
/// A byte range in a table note's data area.
struct BlobRef {
  u64 offset = 0;
  u64 length = 0;
};

}  // namespace ckpt::img
