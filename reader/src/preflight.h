// Checks made before anything is started: is this image restorable here?
#pragma once

#include <ckpt/img/model.h>

namespace ckpt::reader {

/// Every file a mapping depends on is still the same file (inode, size,
/// mtime, build-id); every fd can be recreated; the pids and tids are free;
/// the vdso layout matches; nothing the restorer cannot do yet is needed.
/// Fails naming the first problem.
img::Status preflight(const img::ImageReader &image, const img::CkptView &view, const img::CoreView &core);

/// The restoring user may recreate processes with their original pids
/// (root, CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN); checked before anything
/// else, so that an unprivileged user hears that and not about a file
/// they cannot read. Also the message for clone3's EPERM.
img::Status check_restore_privilege();
img::Error not_permitted_to_restore();

}  // namespace ckpt::reader
