// Which file a record names: its device, as major and minor numbers, and
// its inode. Records carry the device in two fields since format 1.4
// (FORMAT.md §9.4); older images have only `dev`, encoded differently in
// VMA records ((major << 8) | minor, from /proc/PID/maps) and in fd and
// stored-file records (st_dev), so the two could not be compared.
#pragma once

#include <ckpt/img/records.h>

namespace ckpt::img {

struct FileIdentity {
  u32 major = 0, minor = 0;
  u64 ino = 0;
  bool operator==(const FileIdentity &) const = default;
};

/// The device and inode of a mapping's file (all zero for anonymous memory).
FileIdentity file_identity(const VmaRecord &m);
/// The device and inode of an fd's file.
FileIdentity file_identity(const FdRecord &f);
/// The device and inode of a stored file.
FileIdentity file_identity(const StoredFileRecord &f);

/// Does the mapping map the file the fd has open? Same device and inode: an
/// inode number alone names different files on different file systems.
inline bool same_file(const VmaRecord &m, const FdRecord &f) {
  return m.ino != 0 && file_identity(m) == file_identity(f);
}

/// Fills a record's dev_major/dev_minor from the kernel's st_dev.
void set_device(FdRecord &f, u64 st_dev);
void set_device(StoredFileRecord &f, u64 st_dev);

}  // namespace ckpt::img
