// The fd table of another process, read from outside. See fds.h.
#include "fds.h"

#include "fd_kinds/fd_kind.h"
#include "procfs.h"

#include <ckpt/img/file_identity.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <map>
#include <string_view>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <utility>

namespace ckpt::writer {

using img::Expected;
using img::make_error;
using img::u32;
using img::u64;

namespace {

constexpr std::string_view kDeletedSuffix = " (deleted)";

bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

i64 mtime_ns(const struct stat &st) {
  return i64(st.st_mtim.tv_sec) * 1000000000 + i64(st.st_mtim.tv_nsec);
}

struct FdinfoFields {
  u64 pos = 0;
  u32 flags = 0;  ///< f_flags, with O_CLOEXEC standing for the fd's FD_CLOEXEC
};

/// /proc/PID/fdinfo/N starts "pos:\t%lli\nflags:\t0%o\n..." (fs/proc/fd.c);
/// type-specific lines follow and are ignored here.
Expected<FdinfoFields> read_fdinfo(pid_t pid, int fd) {
  std::string path = "/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd);
  auto text = read_file(path);
  if (!text) return text.error().context(fd_where(pid, fd));
  FdinfoFields out;
  bool have_pos = false, have_flags = false;
  std::string_view rest(*text);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    char *end = nullptr;
    std::string value;
    if (starts_with(line, "pos:")) {
      value.assign(line.substr(4));
      errno = 0;
      out.pos = strtoull(value.c_str(), &end, 10);
      have_pos = errno == 0 && end != value.c_str();
    } else if (starts_with(line, "flags:")) {
      value.assign(line.substr(6));
      errno = 0;
      unsigned long v = strtoul(value.c_str(), &end, 8);
      have_flags = errno == 0 && end != value.c_str() && v <= UINT32_MAX;
      out.flags = u32(v);
    }
  }
  if (!have_pos || !have_flags)
    return make_error("pid %d fd %d: %s lacks a parsable pos: or flags: line", pid, fd,
                      path.c_str());
  return out;
}

/// True when readlink printed " (deleted)" because the file was unlinked,
/// false when the file's real name simply ends in " (deleted)" (then the
/// printed path still names the same inode).
bool is_unlinked(const std::string &link, const struct stat &st) {
  if (!ends_with(link, kDeletedSuffix)) return false;
  if (st.st_nlink == 0) return true;
  struct stat named {};
  if (stat(link.c_str(), &named) == 0 && named.st_dev == st.st_dev && named.st_ino == st.st_ino)
    return false;
  // Still linked under another name, but not this one: the dentry the fd
  // was opened through is gone, so the path is useless to a restorer.
  return true;
}

/// Another name of the file `st` in the folder that held `old_name` (the
/// name the fd was opened through, since unlinked), or "" if none there.
/// A hard link made beside a file before it was unlinked is the usual case;
/// the file is then reopened through it, the same inode.
std::string other_name_in_folder(const std::string &old_name, const struct stat &st) {
  std::string dir = old_name.substr(0, old_name.rfind('/') + 1);
  if (dir.empty()) return "";
  DIR *d = opendir(dir.c_str());
  if (!d) return "";
  std::string found;
  while (struct dirent *e = readdir(d)) {
    if (e->d_ino != st.st_ino) continue;
    std::string candidate = dir + e->d_name;
    struct stat named {};
    if (lstat(candidate.c_str(), &named) == 0 && named.st_dev == st.st_dev && named.st_ino == st.st_ino) {
      found = candidate;
      break;
    }
  }
  closedir(d);
  return found;
}

/// One fd's record, path and unlinked content; file_id and pipe_id are
/// assigned later across the table.
Expected<FdInfo> read_one_fd(pid_t pid, int fd) {
  FdInfo fi;
  std::string link = fd_link(pid, fd);
  auto target = read_link(link);
  if (!target) return target.error().context(fd_where(pid, fd));
  // stat() follows the magic link to the open file's inode, even when the
  // name is gone or lives in another mount namespace.
  struct stat st {};
  if (stat(link.c_str(), &st) != 0)
    return make_error("pid %d fd %d: stat %s: %s", pid, fd, link.c_str(), strerror(errno));
  auto info = read_fdinfo(pid, fd);
  if (!info) return info.error();

  img::FdRecord &r = fi.record;
  r.pid = pid;
  r.fd = fd;
  // fdinfo ORs O_CLOEXEC into flags when the fd has FD_CLOEXEC; it is an fd
  // flag, not a file status flag, so move it across.
  r.fd_flags = (info->flags & O_CLOEXEC) ? FD_CLOEXEC : 0;
  r.open_flags = info->flags & ~u32(O_CLOEXEC);
  r.mode = st.st_mode;
  r.pos = info->pos;
  img::set_device(r, st.st_dev);
  r.ino = st.st_ino;
  r.size = u64(st.st_size);
  r.mtime_ns = mtime_ns(st);
  r.rdev = st.st_rdev;
  img::FdType type = classify_fd(FdProbe{*target, st, r.open_flags});
  r.type = u32(type);

  fi.path = *target;
  if (is_unlinked(*target, st)) {
    fi.path.resize(fi.path.size() - kDeletedSuffix.size());
    // Unlinked under this name, still linked under another (st_nlink > 0):
    // a copy would not be that file. Reopen it through its other name when
    // one is in the same folder; otherwise restore refuses it.
    std::string other = S_ISREG(st.st_mode) && st.st_nlink > 0 ? other_name_in_folder(fi.path, st) : "";
    if (!other.empty()) {
      fi.path = other;
    } else {
      r.flags |= img::kFdUnlinked;
      if (S_ISREG(st.st_mode) && st.st_nlink > 0) r.flags |= img::kFdLinkedElsewhere;
    }
  }
  // The kind's own state (an unlinked file's bytes, the terminal mark):
  // writer/src/fd_kinds/.
  CKPT_TRY(writer_fd_kind(type).capture(pid, fi));
  return fi;
}

/// A pipe/FIFO fd we can read buffered bytes through directly.
bool is_readable_pipe_fd(const img::FdRecord &r) {
  u32 acc = r.open_flags & O_ACCMODE;
  return acc == O_RDONLY || acc == O_RDWR;
}

/// The entries of /proc/PID/fd, ascending. Listing does not open anything
/// in the target; the directory fd is ours.
Expected<std::vector<int>> list_fd_numbers(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return make_error("pid %d: open %s: %s", pid, dir.c_str(), strerror(errno));
  DIR *d = fdopendir(dfd);
  if (!d) {
    int e = errno;
    close(dfd);
    return make_error("pid %d: fdopendir %s: %s", pid, dir.c_str(), strerror(e));
  }
  std::vector<int> out;
  for (;;) {
    errno = 0;
    dirent *ent = readdir(d);
    if (!ent) break;
    char *end = nullptr;
    long v = strtol(ent->d_name, &end, 10);
    if (end != ent->d_name && *end == '\0' && v >= 0 && v <= INT32_MAX) out.push_back(int(v));
  }
  int e = errno;
  closedir(d);
  if (e != 0) return make_error("pid %d: readdir %s: %s", pid, dir.c_str(), strerror(e));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

void mark_controlling_terminal(FdTable &table, int tty_nr) {
  // tty_nr in /proc/PID/stat is the kernel's new_encode_dev() of the
  // controlling terminal (0: none), not a glibc dev_t.
  unsigned ma = (unsigned(tty_nr) >> 8) & 0xfff, mi = (unsigned(tty_nr) & 0xff) | ((unsigned(tty_nr) >> 12) & 0xfff00);
  dev_t ctty = tty_nr ? makedev(ma, mi) : 0;
  // A process holding a pty master (/dev/ptmx, 5:2) made its own pair: none
  // of its terminals is a standard stream it was merely given.
  bool holds_master = std::any_of(table.fds.begin(), table.fds.end(), [](const FdInfo &fi) {
    return img::FdType(fi.record.type) == img::FdType::CharDevice && fi.record.rdev == makedev(5, 2);
  });
  for (FdInfo &fi : table.fds) {
    img::FdRecord &r = fi.record;
    if (!(r.flags & img::kFdTerminal)) continue;
    // /dev/tty (5:0) always means the controlling terminal, whatever it is.
    bool controlling = ctty && (r.rdev == ctty || r.rdev == makedev(5, 0));
    // A terminal on fd 0-2 without being the controlling one: the terminal
    // the program was started from, after setsid (or by a daemon).
    bool standard_stream = r.fd <= 2 && r.rdev != makedev(5, 0) && !holds_master;
    if (!controlling && !standard_stream) r.flags &= ~img::u32(img::kFdTerminal);
  }
}

img::Status read_file_bytes(int fd, u64 size, std::vector<img::u8> &out, const std::string &what) {
  out.resize(size);
  u64 done = 0;
  while (done < size) {
    ssize_t n = pread(fd, out.data() + done, size - done, off_t(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return make_error("%s: pread at %llu: %s", what.c_str(), (unsigned long long)done, strerror(errno));
    if (n == 0) break;  // shrank since stat(): keep what is there
    done += u64(n);
  }
  out.resize(done);
  return img::Status::ok();
}

Expected<FdTable> read_fds(pid_t pid, int pidfd) {
  FdTable table;
  auto fds = list_fd_numbers(pid);
  if (!fds) return fds.error();

  for (int fd : *fds) {
    // An fd listed but gone by now was closed in between. A stopped target
    // cannot do that, but the reader's own process can (the directory fd
    // of the listing itself shows up when pid is getpid()): leave it out.
    struct stat link_st {};
    if (lstat(fd_link(pid, fd).c_str(), &link_st) != 0 && errno == ENOENT) continue;
    auto fi = read_one_fd(pid, fd);
    if (!fi) return fi.error();
    table.fds.push_back(fi.take());
  }
  // Skipping vanished fds must not turn a process that exited meanwhile
  // into an empty table.
  if (access(("/proc/" + std::to_string(pid) + "/fd").c_str(), F_OK) != 0)
    return make_error("pid %d: exited while its fds were read (/proc/%d/fd: %s)", pid, pid,
                      strerror(errno));

  // file_id: fds sharing one open file description (dup, fork, SCM_RIGHTS)
  // have equal ids. Only fds on the same inode can share one, so kcmp() is
  // asked only within a (dev, ino) bucket, against each existing group's
  // first fd.
  std::map<std::pair<u64, u64>, std::vector<std::pair<int, u32>>> groups;  // -> (first fd, id)
  u32 next_file_id = 1;
  for (FdInfo &fi : table.fds) {
    img::FdRecord &r = fi.record;
    auto &bucket = groups[{r.dev, r.ino}];
    for (auto [first_fd, id] : bucket) {
      long same = syscall(SYS_kcmp, pid, pid, KCMP_FILE, first_fd, r.fd);
      if (same < 0)
        return make_error("pid %d fd %d: kcmp(KCMP_FILE) against fd %d: %s", pid, r.fd, first_fd,
                          strerror(errno));
      if (same == 0) {
        r.file_id = id;
        break;
      }
    }
    if (r.file_id == 0) {
      r.file_id = next_file_id++;
      bucket.emplace_back(r.fd, r.file_id);
    }
  }

  // pipe_id: one per pipe/FIFO inode, 1-based by first appearance. O_PATH
  // fds on a FIFO hold no pipe (fifo_open never ran) and get none.
  std::map<std::pair<u64, u64>, u32> pipe_ids;
  std::vector<size_t> first_fd_of_pipe, readable_fd_of_pipe;  // indices into table.fds
  for (size_t i = 0; i < table.fds.size(); ++i) {
    img::FdRecord &r = table.fds[i].record;
    if (!writer_fd_kind(img::FdType(r.type)).pipe_buffer || (r.open_flags & O_PATH)) continue;
    auto [it, fresh] = pipe_ids.try_emplace({r.dev, r.ino}, u32(pipe_ids.size() + 1));
    r.pipe_id = it->second;
    if (fresh) {
      first_fd_of_pipe.push_back(i);
      readable_fd_of_pipe.push_back(SIZE_MAX);
    }
    size_t k = r.pipe_id - 1;
    if (readable_fd_of_pipe[k] == SIZE_MAX && is_readable_pipe_fd(r)) readable_fd_of_pipe[k] = i;
  }
  for (size_t k = 0; k < first_fd_of_pipe.size(); ++k) {
    bool readable = readable_fd_of_pipe[k] != SIZE_MAX;
    size_t i = readable ? readable_fd_of_pipe[k] : first_fd_of_pipe[k];
    const img::FdRecord &r = table.fds[i].record;
    auto pipe = read_pipe_buffer(pid, pidfd, r.fd, readable);
    if (!pipe) return pipe.error();
    pipe->pipe_id = u32(k + 1);
    pipe->ino = r.ino;
    table.pipes.push_back(pipe.take());
  }
  return table;
}

}  // namespace ckpt::writer
