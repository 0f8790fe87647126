// Checks made before anything is started: is this image restorable here?
#pragma once

#include <ckpt/img/model.h>

namespace ckpt::reader {

struct PreflightOptions {
  /// restore --reopen-changed-files: an fd whose file was replaced or
  /// truncated since the dump is fine (it is reopened by path as it is now).
  bool reopen_changed_files = false;
};

/// Every file a mapping depends on is still the same file (inode, size,
/// mtime, build-id); every fd can be recreated; the pids and tids are free;
/// the vdso layout matches; nothing the restorer cannot do yet is needed.
/// A file the image stores (dump --store-tmpfs-files) may be gone: restore
/// recreates it. Fails naming the first problem.
img::Status preflight(const img::ImageReader &image, const img::CkptView &view, const img::CoreView &core,
                      const PreflightOptions &options = {});

}  // namespace ckpt::reader
