// Pty pairs a process held (master /dev/ptmx and its slaves /dev/pts/N):
// a new pair from /dev/ptmx, with the dumped termios, window size, packet
// mode, queued bytes, the slave's owner, mode and exclusive mode, and the
// lock state once every fd is placed. The kernel picks the pair's number:
// it may differ from the dumped one (decision 143). Each slave fd is a new
// open file of the new slave (TIOCGPTPEER, Linux 4.13), so it works
// wherever the process's /dev/pts is.
#include "fd_kind.h"

#include <algorithm>
#include <optional>
#include <termios.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/img/tty_abi.h>

namespace ckpt::reader {

using namespace img;

namespace {

Expected<TtyState> pty_state(const CkptView &v, const FdRecord &r) { return fd_state<TtyState>(v.fds, r); }

const FdRecord *master_record(const CkptView &v, i32 pid, u32 index) {
  for (const FdRecord &o : v.fds.records) {
    if (o.pid != pid || FdType(o.type) != FdType::CharDevice || !o.state.length) continue;
    auto s = pty_state(v, o);
    if (s && (s->flags & kTtyMaster) && s->index == index) return &o;
  }
  return nullptr;
}

// The pair of the dumped pty `index`, made on first use: the master
// (owned by the table) and one slave kept open until every fd is placed,
// so that the slave is never closed by all in between (its last close
// would make the master read EIO).
// Moves fd above every fd number the process restores: the pair's fds
// stay open until all are placed (restore_fds), and must not sit where
// one of them goes (dup3 would replace it, and closing ours close it).
int above_restored(const CkptView &v, int fd) {
  if (fd < 0) return fd;
  int top = 3;
  for (const FdRecord &r : v.fds.records) top = std::max(top, r.fd + 1);
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, top + 256);
  int e = errno;
  close(fd);
  errno = e;
  return moved;
}

// A new pair as `master` (of master_view) describes it, with `slave` (of
// slave_view: the same process's, or another's of the tree) open when
// given (the slave's owner, mode and exclusive mode come from it).
Expected<std::pair<int, int>> make_pair(const CkptView &master_view, const FdRecord &master, const TtyState &ms,
                                        const CkptView *slave_view, const FdRecord *slave_record) {
  int m = above_restored(master_view, open("/dev/ptmx", reopen_flags(master) | O_NOCTTY | O_CLOEXEC));
  if (m < 0) return make_error("fd %d: pty master: cannot open /dev/ptmx: %s", master.fd, strerror(errno));
  auto fail = [&](const char *what) -> Error {
    int e = errno;
    close(m);
    return make_error("fd %d: pty master: %s: %s", master.fd, what, strerror(e));
  };
  int unlocked = 0;
  if (ioctl(m, TIOCSPTLCK, &unlocked) != 0) return fail("TIOCSPTLCK");
  // A master's termios and window size ioctls act on its slave.
  KernelTermios2 t = termios_of(ms);
  if (ioctl(m, kTcsets2, &t) != 0) return fail("TCSETS2");
  struct winsize ws = {ms.ws_row, ms.ws_col, ms.ws_xpixel, ms.ws_ypixel};
  if (ioctl(m, TIOCSWINSZ, &ws) != 0) return fail("TIOCSWINSZ");
  // The slave is opened only when the process held it: one opened and
  // closed here would make the master read EIO, unlike a pair whose slave
  // was never opened.
  int on = 1;
  if ((ms.flags & kTtyPacketMode) && ioctl(m, TIOCPKT, &on) != 0) return fail("TIOCPKT");
  if (!slave_record) return std::pair{m, -1};
  auto slave_state_read = pty_state(*slave_view, *slave_record);
  if (!slave_state_read) {
    close(m);
    return slave_state_read.error();
  }
  TtyState slave_state = *slave_state_read;
  int s = above_restored(master_view, ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (s < 0) return fail("TIOCGPTPEER");
  auto bytes = master_view.fds.blob(master.content);
  if (!bytes) {
    close(s);
    close(m);
    return bytes.error();
  }
  if (bytes->size() != size_t(ms.input_length) + ms.output_length) {
    close(s);
    close(m);
    return make_error("fd %d: pty master: %zu queued bytes stored, its state says %u + %u", master.fd, bytes->size(),
                      ms.input_length, ms.output_length);
  }
  if (int e = push_pty_queues(m, s, t, bytes->subspan(0, ms.input_length), bytes->subspan(ms.input_length)); e) {
    close(s);
    errno = e;
    return fail("putting back its queued bytes");
  }
  // The slave's owner, mode and exclusive mode.
  if (fchown(s, slave_state.owner_uid, slave_state.owner_gid) != 0 || fchmod(s, slave_state.file_mode) != 0) {
    close(s);
    return fail("setting the slave's owner and mode");
  }
  if ((slave_state.flags & kTtyExclusive) && ioctl(s, TIOCEXCL) != 0) {
    close(s);
    return fail("TIOCEXCL");
  }
  return std::pair{m, s};
}

// The process's pair of the dumped pty ms.index: made on first use, or
// made once for the tree and inherited (restore_fds puts those here).
Expected<std::pair<int, int>> pair_for(FdOpenContext &c, const FdRecord &master, const TtyState &ms) {
  if (auto made = c.pipes.pty_pairs.find(ms.index); made != c.pipes.pty_pairs.end()) return made->second;
  const FdRecord *slave = nullptr;
  for (const FdRecord &o : c.view.fds.records) {
    if (o.pid != master.pid || FdType(o.type) != FdType::CharDevice || !o.state.length) continue;
    auto os = pty_state(c.view, o);
    if (os && (os->flags & kTtySlave) && os->index == ms.index) {
      slave = &o;
      break;
    }
  }
  auto pair = make_pair(c.view, master, ms, slave ? &c.view : nullptr, slave);
  if (pair) c.pipes.pty_pairs[ms.index] = *pair;
  return pair;
}

}  // namespace

bool is_pty_end(const CkptView &v, const FdRecord &r) {
  if (FdType(r.type) != FdType::CharDevice || !r.state.length || (r.flags & kFdTerminal)) return false;
  auto s = pty_state(v, r);
  return s && (s->flags & (kTtyMaster | kTtySlave));
}

std::optional<u32> pty_index(const CkptView &v, const FdRecord &r) {
  if (!is_pty_end(v, r)) return std::nullopt;
  auto s = pty_state(v, r);
  if (!s) return std::nullopt;
  return s->index;
}

Expected<std::pair<int, int>> make_tree_pty_pair(const CkptView &master_view, const FdRecord &master,
                                                 const CkptView *slave_view, const FdRecord *slave) {
  auto ms = pty_state(master_view, master);
  if (!ms) return ms.error();
  return make_pair(master_view, master, *ms, slave_view, slave);
}

Expected<int> open_pty_end(FdOpenContext &c, const FdRecord &r) {
  auto s = pty_state(c.view, r);
  if (!s) return s.error();
  const FdRecord *master = (s->flags & kTtyMaster) ? &r : master_record(c.view, r.pid, s->index);
  // A slave whose master another process of the tree holds: the pair was
  // made once for the tree and inherited (tree_create.cc).
  if (!master)
    if (auto made = c.pipes.pty_pairs.find(s->index); made != c.pipes.pty_pairs.end()) {
      int fd = ioctl(made->second.first, TIOCGPTPEER, reopen_flags(r) | O_NOCTTY | O_CLOEXEC);
      if (fd < 0) return make_error("fd %d: pty slave: TIOCGPTPEER: %s", r.fd, strerror(errno));
      return fd;
    }
  if (!master) return make_error("fd %d: pty slave %u: its master is not in the image", r.fd, s->index);
  auto ms = pty_state(c.view, *master);
  if (!ms) return ms.error();
  auto pair = pair_for(c, *master, *ms);
  if (!pair) return pair.error();
  if (s->flags & kTtyMaster) {
    int fd = fcntl(pair->first, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return make_error("fd %d: pty master: dup: %s", r.fd, strerror(errno));
    return fd;
  }
  // A new open file of the slave with this fd's access mode and flags.
  int fd = ioctl(pair->first, TIOCGPTPEER, reopen_flags(r) | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return make_error("fd %d: pty slave: TIOCGPTPEER: %s", r.fd, strerror(errno));
  return fd;
}

Status lock_pty_master(const CkptView &v, const FdRecord &r) {
  if (!is_pty_end(v, r)) return {};
  auto s = pty_state(v, r);
  if (!s) return s.error();
  int locked = 1;
  if ((s->flags & kTtyMaster) && (s->flags & kTtyLocked) && ioctl(r.fd, TIOCSPTLCK, &locked) != 0)
    return make_error("fd %d: pty master: TIOCSPTLCK: %s", r.fd, strerror(errno));
  // The slave of a pair the tree holds that was this process's controlling
  // terminal (a `script`-like child's: only such slaves are pty ends and
  // controlling, decision 167) becomes it again: the process leads its
  // session by now (tree_create.cc step 1). TIOCSCTTY on the terminal it
  // already has is a no-op for its other fds.
  if ((s->flags & kTtySlave) && (s->flags & kTtyControlling) && getsid(0) == getpid()) {
    if (ioctl(r.fd, TIOCSCTTY, 0) != 0)
      return make_error("fd %d: pty slave: cannot make it the controlling terminal again: %s", r.fd, strerror(errno));
    if ((s->flags & kTtyForeground) && tcsetpgrp(r.fd, getpgrp()) != 0)
      return make_error("fd %d: pty slave: cannot give its group the foreground: %s", r.fd, strerror(errno));
  }
  return {};
}

}  // namespace ckpt::reader
