// Checks made before anything is started: is this image restorable here?
#pragma once

#include <ckpt/img/model.h>

namespace ckpt::reader {

/// Every file a mapping depends on is still the same file (inode, size,
/// mtime, build-id); every fd can be recreated; the pids and tids are free;
/// the vdso layout matches; nothing the restorer cannot do yet is needed.
/// Fails naming the first problem.
img::Status preflight(const img::ImageReader &image, const img::CkptView &view, const img::CoreView &core);

}  // namespace ckpt::reader
