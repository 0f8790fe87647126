// Files on memory file systems that the user asked to keep in the image
// (imgtool dump --store-tmpfs-files): see docs/FORMAT.md §9.16.
#pragma once

#include <string>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

#include "fds.h"
#include "procfs.h"

namespace ckpt::writer {

struct StoredFile {
  img::StoredFileRecord record{};  ///< all fields except path/content refs
  std::string path;
  std::vector<img::u8> content;
};

/// Largest file --store-tmpfs-files copies; a larger one fails the dump.
inline constexpr img::u64 kMaxStoredFileBytes = img::u64(256) << 20;

/// The linked regular files on tmpfs or ramfs that pid holds open or maps
/// MAP_SHARED, each once, with their bytes.
img::Expected<std::vector<StoredFile>> read_stored_files(pid_t pid, const FdTable &fds,
                                                         const std::vector<MapEntry> &maps);

}  // namespace ckpt::writer
