#include "locks.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

static const char *lock_name(LockKind k) {
  switch (k) {
    case LockKind::Flock: return "flock";
    case LockKind::Posix: return "POSIX";
    case LockKind::Ofd: return "OFD";
    case LockKind::Lease: return "lease";
  }
  return "unknown";
}

static int take(const LockRecord &l) {
  auto kind = static_cast<LockKind>(l.kind);
  if (kind == LockKind::Flock) return flock(l.fd, (l.type == F_WRLCK ? LOCK_EX : LOCK_SH) | LOCK_NB);
  if (kind == LockKind::Lease) return fcntl(l.fd, F_SETLEASE, int(l.type));
  struct flock fl {};
  fl.l_type = static_cast<short>(l.type);
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(l.start);
  fl.l_len = l.end == kLockToEof ? 0 : static_cast<off_t>(l.end - l.start + 1);
  // An OFD lock must say l_pid 0; a POSIX lock's owner is this process,
  // which already has the original pid.
  fl.l_pid = 0;
  return fcntl(l.fd, kind == LockKind::Ofd ? F_OFD_SETLK : F_SETLK, &fl);
}

Status restore_locks(const CkptView &v) {
  for (const LockRecord &l : v.locks.records) {
    if (l.kind > u32(LockKind::Lease))
      return make_error("fd %d: a lock of unknown kind %u", l.fd, l.kind);
    if (take(l) < 0) {
      const char *range = static_cast<LockKind>(l.kind) == LockKind::Posix || static_cast<LockKind>(l.kind) == LockKind::Ofd ? " byte range" : "";
      return make_error("cannot take the %s %s%s lock on fd %d again: %s", lock_name(static_cast<LockKind>(l.kind)),
                        l.type == F_WRLCK ? "write" : "read", range, l.fd, strerror(errno));
    }
  }
  return {};
}

}  // namespace ckpt::reader
