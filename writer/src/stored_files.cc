// read_stored_files: see stored_files.h. The files are reached through the
// target's own fds and mappings (/proc/PID/fd/N, /proc/PID/map_files/A-B),
// never by path, so a file in another mount namespace, or one renamed
// since it was opened, is still the file the process has.
#include "stored_files.h"

#include <ckpt/img/file_identity.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/magic.h>
#include <set>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

namespace ckpt::writer {

using img::Expected;
using img::make_error;
using img::i64;
using img::u64;

namespace {

i64 mtime_of(const struct stat &st) { return i64(st.st_mtim.tv_sec) * 1000000000 + i64(st.st_mtim.tv_nsec); }

/// Opens `link` (a /proc magic link), and when it is a regular file on a
/// memory file system not yet in `seen`, appends it to out.
img::Status store_if_volatile(const std::string &link, const std::string &path, std::set<std::pair<u64, u64>> &seen,
                              std::vector<StoredFile> &out) {
  int fd = open(link.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return make_error("--store-tmpfs-files: open %s (%s): %s", link.c_str(), path.c_str(), strerror(errno));
  struct stat st {};
  struct statfs fs {};
  img::Status s = img::Status::ok();
  if (fstat(fd, &st) != 0 || fstatfs(fd, &fs) != 0) {
    s = make_error("--store-tmpfs-files: stat %s (%s): %s", link.c_str(), path.c_str(), strerror(errno));
  } else if (S_ISREG(st.st_mode) && (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC) &&
             seen.insert({u64(st.st_dev), u64(st.st_ino)}).second) {
    if (u64(st.st_size) > kMaxStoredFileBytes) {
      s = make_error("--store-tmpfs-files: %s is %lld bytes, more than the %llu byte limit", path.c_str(),
                     (long long)st.st_size, (unsigned long long)kMaxStoredFileBytes);
    } else {
      StoredFile f;
      img::set_device(f.record, st.st_dev);
      f.record.ino = u64(st.st_ino);
      f.record.mtime_ns = mtime_of(st);
      f.record.mode = st.st_mode;
      f.record.uid = st.st_uid;
      f.record.gid = st.st_gid;
      f.path = path;
      s = read_file_bytes(fd, u64(st.st_size), f.content, path);
      f.record.size = f.content.size();
      if (s) out.push_back(std::move(f));
    }
  }
  close(fd);
  return s;
}

}  // namespace

Expected<std::vector<StoredFile>> read_stored_files(pid_t pid, const FdTable &fds, const std::vector<MapEntry> &maps) {
  std::vector<StoredFile> out;
  std::set<std::pair<u64, u64>> seen;
  std::string proc = "/proc/" + std::to_string(pid);
  for (const FdInfo &f : fds.fds) {
    if (img::FdType(f.record.type) != img::FdType::Regular || (f.record.flags & img::kFdUnlinked) ||
        (f.record.open_flags & O_PATH))
      continue;
    CKPT_TRY(store_if_volatile(proc + "/fd/" + std::to_string(f.record.fd), f.path, seen, out));
  }
  static constexpr std::string_view kDeleted = " (deleted)";
  for (const MapEntry &m : maps) {
    if (!m.shared || m.path.empty() || m.path[0] != '/') continue;
    // An unlinked file's pages are in the image already (its VMA is
    // kVmaDeletedFile); only named files can vanish between dump and restore.
    if (m.path.size() >= kDeleted.size() && m.path.compare(m.path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0)
      continue;
    char range[64];
    std::snprintf(range, sizeof range, "/map_files/%llx-%llx", (unsigned long long)m.start, (unsigned long long)m.end);
    CKPT_TRY(store_if_volatile(proc + range, m.path, seen, out));
  }
  return out;
}

}  // namespace ckpt::writer
