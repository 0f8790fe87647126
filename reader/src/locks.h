// Takes the image's file locks and leases (CkptNote::Locks) again on the
// restored fds (issue 17).
#pragma once

#include <ckpt/img/expected.h>
#include <ckpt/img/model.h>

namespace ckpt::reader {

/// In the process that becomes the image, once every fd is in place and
/// no fd it will close shares an inode with a POSIX-locked one (closing
/// any fd of an inode drops the process's POSIX locks on it: that is why
/// img::unsupported_state refuses a POSIX lock on a mapped file). Fails
/// naming the first lock that cannot be taken (held by someone else now).
img::Status restore_locks(const img::CkptView &v);

}  // namespace ckpt::reader
