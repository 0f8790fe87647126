// Is the image's vDSO this kernel's? The restored process keeps pointers
// into the vDSO it was started with (glibc looks its entry points up once,
// at startup), but restore can only map the running kernel's vDSO where the
// old one was. When an entry point moved (a kernel update), those pointers
// would land mid-function.
#pragma once

#include <span>
#include <vector>

#include <ckpt/img/model.h>

#include "self_maps.h"

namespace ckpt::reader {

/// Compares two vDSO images: equal bytes, or (CPU-specific alternatives
/// patched into the code differ) every dynamic symbol of `image_vdso` at the
/// same offset in `ours`. Fails naming the first symbol that moved or is
/// missing, or when either is not a readable ELF image.
img::Status compare_vdso(std::span<const img::u8> image_vdso, std::span<const img::u8> ours);

/// compare_vdso() of the image's stored [vdso] against this process's,
/// found in `self` (read_self_maps(), which the caller has read for its own
/// vdso checks too). An image without a [vdso] mapping passes.
img::Status check_vdso_matches(const img::ImageReader &image, const img::CkptView &v,
                               const std::vector<SelfMapping> &self);

}  // namespace ckpt::reader
