// What the kernel keeps of a memfd or deleted file that a process maps
// MAP_SHARED (FORMAT.md §9.5, VmaRecord `seals` and `mode`): one that no fd
// holds any more, only mappings, still has its seals and mode, and restore
// recreates the object with them.
#pragma once

#include <map>
#include <optional>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

#include "procfs.h"

namespace ckpt::writer {

/// The mapped object behind one shared mapping.
struct MappedObjectFacts {
  std::optional<img::u32> seals;  ///< F_GET_SEALS of a memfd (kVmaSeals)
  std::optional<img::u32> mode;   ///< st_mode & 07777 (kVmaMode)
};

/// The seals and mode of the object behind each MAP_SHARED mapping in
/// `maps` of a memfd ("/memfd:NAME (deleted)", seals and mode) or of
/// another deleted file (mode), by the mapping's start. Call while pid is
/// frozen. A mapping whose object the dumper may not open
/// (/proc/PID/map_files wants CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN) is
/// left out: its record says nothing of them, as before format minor 8.
img::Expected<std::map<img::u64, MappedObjectFacts>> read_mapped_objects(pid_t pid, const std::vector<MapEntry> &maps);

}  // namespace ckpt::writer
