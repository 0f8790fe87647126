// The seals of memfds a process maps MAP_SHARED (FORMAT.md §9.5,
// VmaRecord `seals`): a memfd that no fd holds any more, only mappings,
// still has them, and restore recreates the object with them.
#pragma once

#include <map>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

#include "procfs.h"

namespace ckpt::writer {

/// F_GET_SEALS of the memfd behind each MAP_SHARED mapping of one in
/// `maps` (path "/memfd:NAME (deleted)"), by the mapping's start. Call
/// while pid is frozen. A mapping whose object the dumper may not open
/// (/proc/PID/map_files wants CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN) is
/// left out: its record says nothing of seals, as before format minor 8.
img::Expected<std::map<img::u64, img::u32>> read_mapped_memfd_seals(pid_t pid, const std::vector<MapEntry> &maps);

}  // namespace ckpt::writer
