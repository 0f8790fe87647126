// memfds: recreated by memfd_create() under their name from their stored
// bytes (libimg refuses an image that lacks them).
#include "fd_kind.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

// F_SEAL_EXEC is Linux 6.3's; older headers lack it.
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

namespace ckpt::reader {

using namespace img;

// F_SEAL_FUTURE_WRITE refuses a writable shared mapping made after it
// (mm/memfd.c, memfd_check_seals_mmap: EPERM) but keeps the ones made
// before, which the restorer makes again later than this: it adds that
// seal itself once the memory is mapped, with F_SEAL_EXEC (which implies
// F_SEAL_FUTURE_WRITE on a memfd whose mode has an exec bit) and
// F_SEAL_SEAL (which forbids adding any seal after it).
u32 memfd_late_seals(u32 seals) {
  if (!(seals & F_SEAL_FUTURE_WRITE)) return 0;
  return seals & (F_SEAL_FUTURE_WRITE | F_SEAL_EXEC | F_SEAL_SEAL);
}

u32 memfd_late_seals(const FdRecord &r) { return (r.flags & kFdSeals) ? memfd_late_seals(r.seals) : 0; }

u32 mapped_memfd_late_seals(const VmaRecord &m) {
  return (m.flags & kVmaSeals) && (m.flags & kVmaShared) ? memfd_late_seals(m.seals) : 0;
}

// Adds what `seals` has and fd's memfd lacks; false with errno set.
static bool add_missing_seals(int fd, u32 seals) {
  int now = fcntl(fd, F_GET_SEALS);
  if (now >= 0 && (u32(now) & seals) != seals) now = fcntl(fd, F_ADD_SEALS, int(seals & ~u32(now)));
  return now >= 0;
}

// The late seals of the memfds process `pid` only maps (no fd of its has
// them; decision 226): reached through its mapping, opened for
// writing, since F_ADD_SEALS wants a writable open file.
static Status add_mapped_late_seals(pid_t pid, const CkptView &v) {
  for (const VmaRecord &m : v.vmas.records) {
    u32 seals = mapped_memfd_late_seals(m);
    if (!seals) continue;
    char link[96];
    std::snprintf(link, sizeof link, "/proc/%d/map_files/%llx-%llx", int(pid), (unsigned long long)m.start,
                  (unsigned long long)m.end);
    int fd = open(link, O_RDWR | O_CLOEXEC);
    bool sealed = fd >= 0 && add_missing_seals(fd, seals);
    int e = errno;
    if (fd >= 0) close(fd);
    if (!sealed)
      return make_error("process %d: cannot seal the memfd mapped at 0x%llx with 0x%x once the tree's memory is mapped: %s",
                        pid, (unsigned long long)m.start, seals, strerror(e));
  }
  return {};
}

Status add_late_seals(pid_t pid, const CkptView &v) {
  int pidfd = -1;
  for (const FdRecord &r : v.fds.records) {
    u32 seals = memfd_late_seals(r);
    if (!seals) continue;
    if (pidfd < 0 && (pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0))) < 0)
      return make_error("process %d: pidfd_open to seal its memfds: %s", pid, strerror(errno));
    // The process's own open file (its access mode: F_ADD_SEALS wants
    // one open for writing, as the process's own fcntl would).
    int fd = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, r.fd, 0));
    bool sealed = fd >= 0 && add_missing_seals(fd, seals);
    int e = errno;
    if (fd >= 0) close(fd);
    if (!sealed) {
      close(pidfd);
      return make_error("process %d fd %d: cannot seal the recreated memfd with 0x%x once the tree's memory is mapped: %s",
                        pid, r.fd, seals, strerror(e));
    }
  }
  if (pidfd >= 0) close(pidfd);
  return add_mapped_late_seals(pid, v);
}

Expected<int> open_memfd(FdOpenContext &c, const FdRecord &r) {
  std::string path(c.view.fds.str_or_empty(r.path));
  std::string name = path.rfind("/memfd:", 0) == 0 ? path.substr(7) : "restored";
  if (name.size() > 10 && name.compare(name.size() - 10, 10, " (deleted)") == 0) name.resize(name.size() - 10);
  // F_SEAL_SEAL alone is what a memfd made without MFD_ALLOW_SEALING has.
  bool sealing = (r.flags & kFdSeals) && r.seals != F_SEAL_SEAL;
  int fd = static_cast<int>(syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC | (sealing ? MFD_ALLOW_SEALING : 0)));
  if (fd < 0) return make_error("fd %d: cannot recreate unlinked %s: %s", r.fd, path.c_str(), strerror(errno));
  auto again = fill_and_reopen(c.view, r, fd, path);
  if (!again || !sealing) return again;
  // Sealed after its bytes are back (F_SEAL_WRITE forbids the refill),
  // but for the seals the restorer adds; another open file of the same
  // memfd may have sealed it already.
  u32 early = r.seals & ~memfd_late_seals(r);
  int now = fcntl(*again, F_GET_SEALS);
  if (now >= 0 && (u32(now) & early) != early && fcntl(*again, F_ADD_SEALS, int(early & ~u32(now))) < 0) {
    int e = errno;
    close(*again);
    return make_error("fd %d: cannot seal the recreated %s with 0x%x: %s", r.fd, path.c_str(), r.seals, strerror(e));
  }
  return again;
}

}  // namespace ckpt::reader
