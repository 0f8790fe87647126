// File locks and leases a process holds through its fds (issue 17):
// flock, POSIX record locks, OFD locks and leases, from the "lock:" lines
// of /proc/PID/fdinfo/FD.
#pragma once

#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

#include "fds.h"

namespace ckpt::writer {

/// One LockRecord per fd and "lock:" line; fails naming the fd on a kind
/// restore cannot take back (an NFS delegation, a lease being broken).
img::Expected<std::vector<img::LockRecord>> read_locks(pid_t pid, const FdTable &fds);

}  // namespace ckpt::writer
