#include "locks.h"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sstream>
#include <string>

#include "procfs.h"

namespace ckpt::writer {

using namespace img;

// A "lock:" line of fdinfo, as fs/locks.c lock_get_status() prints it after
// "lock:\t":
//   "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
//   "2: POSIX  ADVISORY  READ 1234 08:01:5678 20 EOF"
//   "3: OFDLCK ADVISORY  WRITE -1 08:01:5678 5 14"
//   "4: LEASE  ACTIVE    READ 1234 08:01:5678 0 EOF"
// (kind, then ADVISORY or the lease's state, type, owner pid, dev:ino,
// start, end or EOF).
static Expected<LockRecord> parse_lock_line(pid_t pid, int fd, const std::string &line) {
  std::istringstream in(line);
  std::string id, kind, state, type, owner, inode, start, end;
  in >> id >> kind >> state >> type >> owner >> inode >> start >> end;
  LockRecord r{};
  r.pid = pid;
  r.fd = fd;
  auto bad = [&](const char *why) {
    return make_error("pid %d fd %d: %s: \"%s\"", pid, fd, why, line.c_str());
  };
  if (kind == "FLOCK") r.kind = u32(LockKind::Flock);
  else if (kind == "POSIX") r.kind = u32(LockKind::Posix);
  else if (kind == "OFDLCK") r.kind = u32(LockKind::Ofd);
  else if (kind == "LEASE" && state == "ACTIVE") r.kind = u32(LockKind::Lease);
  else if (kind == "LEASE") return bad("a lease being broken cannot be checkpointed");
  else return bad("a lock of this kind cannot be checkpointed");
  if (type == "READ") r.type = F_RDLCK;
  else if (type == "WRITE") r.type = F_WRLCK;
  else return bad("a lock of this type cannot be checkpointed");
  char *stop = nullptr;
  errno = 0;
  r.start = std::strtoull(start.c_str(), &stop, 10);
  if (errno || stop == start.c_str()) return bad("no lock start");
  if (end == "EOF") r.end = kLockToEof;
  else {
    errno = 0;
    r.end = std::strtoull(end.c_str(), &stop, 10);
    if (errno || stop == end.c_str()) return bad("no lock end");
  }
  return r;
}

Expected<std::vector<LockRecord>> read_locks(pid_t pid, const FdTable &fds) {
  std::vector<LockRecord> out;
  for (const FdInfo &f : fds.fds) {
    int fd = f.record.fd;
    auto text = read_file("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
    // Closed since the fd table was read: the process is frozen, so only
    // by us; nothing of it can hold a lock.
    if (!text) continue;
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("lock:", 0) != 0) continue;
      auto r = parse_lock_line(pid, fd, line.substr(5));
      if (!r) return r.error();
      out.push_back(*r);
    }
  }
  return out;
}

}  // namespace ckpt::writer
