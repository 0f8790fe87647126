// Files the image stores because they lived in memory (dump
// --store-tmpfs-files, docs/FORMAT.md §9.16): finding them, and recreating
// the ones that are gone before the process that needs them comes back.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <ckpt/img/model.h>

namespace ckpt::reader {

/// The stored copy of the file that was at `path` with inode `ino`, or null.
const img::StoredFileRecord *find_stored_file(const img::CkptView &v, std::string_view path, img::u64 ino);

/// Recreates, at its path, every stored file whose path names nothing now:
/// same bytes, mode, owner and mtime. Returns the paths it created, for
/// remove_files() should the restore fail before the process runs.
img::Expected<std::vector<std::string>> recreate_missing_files(const img::CkptView &v);

/// Unlinks what recreate_missing_files() created.
void remove_files(const std::vector<std::string> &paths);

}  // namespace ckpt::reader
