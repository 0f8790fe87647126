// inotify fds: each watch's wd, mask and the path of the watched inode,
// stored as an InotifyState; restore adds the watches again in wd order
// (reader/src/fd_kinds/inotify.cc). Events queued and not read yet are not
// captured (DECISIONS.md 97).
#include "fd_kind.h"

#include "../procfs.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <optional>
#include <vector>

namespace ckpt::writer {

namespace {

/// One "inotify wd:..." line of fdinfo (fs/notify/fdinfo.c inotify_fdinfo):
///   inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x
///           fhandle-bytes:%x fhandle-type:%x f_handle:%02x%02x...
/// all numbers hexadecimal; the fhandle part is missing when the
/// filesystem cannot encode one.
struct WatchLine {
  int wd = 0;
  unsigned long long ino = 0, sdev = 0, mask = 0;
  unsigned handle_bytes = 0;
  int handle_type = 0;
  std::vector<unsigned char> handle;
};

bool field(std::string_view line, std::string_view key, unsigned long long &out) {
  size_t at = line.find(" " + std::string(key) + ":");
  if (at == std::string_view::npos) return false;
  std::string v(line.substr(at + key.size() + 2, line.find(' ', at + 1) - (at + key.size() + 2)));
  char *end = nullptr;
  errno = 0;
  out = strtoull(v.c_str(), &end, 16);
  return errno == 0 && end != v.c_str();
}

std::optional<WatchLine> parse_watch(std::string_view line) {
  WatchLine w;
  unsigned long long wd = 0, bytes = 0, type = 0;
  if (!field(line, "wd", wd) || !field(line, "ino", w.ino) || !field(line, "sdev", w.sdev) ||
      !field(line, "mask", w.mask))
    return std::nullopt;
  w.wd = int(wd);
  if (field(line, "fhandle-bytes", bytes) && field(line, "fhandle-type", type)) {
    w.handle_bytes = unsigned(bytes);
    w.handle_type = int(type);
    size_t at = line.find(" f_handle:");
    if (at == std::string_view::npos) return std::nullopt;
    std::string_view hex = line.substr(at + 10);
    for (size_t i = 0; i + 1 < hex.size() && w.handle.size() < w.handle_bytes; i += 2)
      w.handle.push_back(static_cast<unsigned char>(std::strtoul(std::string(hex.substr(i, 2)).c_str(), nullptr, 16)));
    if (w.handle.size() != w.handle_bytes) return std::nullopt;
  }
  return w;
}

/// "/proc/PID/root" + the mount point of a mount of the filesystem whose
/// kernel-internal s_dev is sdev, from the target's mountinfo.
img::Expected<std::string> mount_of(pid_t pid, unsigned long long sdev) {
  // fdinfo prints the superblock's s_dev in the kernel's internal dev_t
  // encoding (MAJOR << 20 | MINOR), not the userspace one.
  unsigned ma = unsigned(sdev >> 20), mi = unsigned(sdev & 0xfffff);
  std::string root = "/proc/" + std::to_string(pid) + "/root";
  auto text = read_file("/proc/" + std::to_string(pid) + "/mountinfo");
  if (!text) return text.error();
  std::string_view rest(*text);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT ...", the mount point with
    // blanks and backslashes as \ooo.
    std::vector<std::string_view> f;
    size_t at = 0;
    while (f.size() < 5 && at < line.size()) {
      size_t sp = line.find(' ', at);
      f.push_back(line.substr(at, sp == std::string_view::npos ? std::string_view::npos : sp - at));
      at = sp == std::string_view::npos ? line.size() : sp + 1;
    }
    if (f.size() < 5 || f[2] != std::to_string(ma) + ":" + std::to_string(mi)) continue;
    std::string point;
    for (size_t i = 0; i < f[4].size(); i++) {
      if (f[4][i] == '\\' && i + 3 < f[4].size()) {
        point += char(std::strtoul(std::string(f[4].substr(i + 1, 3)).c_str(), nullptr, 8));
        i += 3;
      } else {
        point += f[4][i];
      }
    }
    return root + point;
  }
  return img::make_error("no mount of device %u:%u in /proc/%d/mountinfo", ma, mi, pid);
}

/// The path of the inode a watch is on, found through its file handle.
img::Expected<std::string> watched_path(pid_t pid, const WatchLine &w) {
  if (w.handle.empty())
    return img::make_error("its filesystem gives no file handle to find the watched inode %llu by", w.ino);
  auto mount = mount_of(pid, w.sdev);
  if (!mount) return mount.error();
  UniqueFd mount_fd(open(mount->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!mount_fd.valid()) return img::make_error("cannot open its mount %s: %s", mount->c_str(), strerror(errno));
  std::vector<unsigned char> buf(sizeof(file_handle) + w.handle.size());
  auto *fh = reinterpret_cast<file_handle *>(buf.data());
  fh->handle_bytes = w.handle_bytes;
  fh->handle_type = w.handle_type;
  std::memcpy(fh->f_handle, w.handle.data(), w.handle.size());
  // open_by_handle_at needs CAP_DAC_READ_SEARCH, which a dumping root has.
  UniqueFd inode(open_by_handle_at(mount_fd.get(), fh, O_PATH | O_CLOEXEC));
  if (!inode.valid()) return img::make_error("open_by_handle_at of inode %llu: %s", w.ino, strerror(errno));
  auto path = read_link("/proc/self/fd/" + std::to_string(inode.get()));
  if (!path) return path.error();
  // A watch on a file since deleted has no path to add it by again.
  if (path->size() >= 10 && path->substr(path->size() - 10) == " (deleted)")
    return img::make_error("the watched inode %llu (%s) is deleted", w.ino, path->c_str());
  struct stat st {};
  if (lstat(path->c_str(), &st) != 0 || st.st_ino != w.ino)
    return img::make_error("the watched inode %llu has no path that names it (%s)", w.ino, path->c_str());
  return path.take();
}

}  // namespace

bool recognizes_inotify(const FdProbe &p) { return is_anon_inode(p.link) && p.link.substr(11) == "inotify"; }

img::Status capture_inotify(pid_t pid, FdInfo &fi) {
  int fd = fi.record.fd;
  auto text = read_file(fdinfo_path(pid, fd));
  if (!text) return text.error().context(fd_where(pid, fd));
  std::vector<img::InotifyWatchEntry> watches;
  std::string_view rest(*text);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (!starts_with(line, "inotify ")) continue;
    auto w = parse_watch(line);
    if (!w)
      return img::make_error("%s: inotify: unparsable fdinfo line \"%.*s\"", fd_where(pid, fd).c_str(), int(line.size()),
                             line.data());
    auto path = watched_path(pid, *w);
    if (!path) return path.error().context(fd_where(pid, fd) + ": inotify watch " + std::to_string(w->wd));
    struct stat st {};
    lstat(path->c_str(), &st);
    img::InotifyWatchEntry e;
    e.watch.wd = w->wd;
    e.watch.mask = static_cast<img::u32>(w->mask);
    e.watch.ino = w->ino;
    e.watch.dev = st.st_dev;
    e.path = path.take();
    watches.push_back(std::move(e));
  }
  // fdinfo lists the marks newest first; restore adds them in wd order.
  std::sort(watches.begin(), watches.end(),
            [](const img::InotifyWatchEntry &a, const img::InotifyWatchEntry &b) { return a.watch.wd < b.watch.wd; });
  fi.state = img::inotify_state_bytes(watches);
  return img::Status::ok();
}

}  // namespace ckpt::writer
