// A process's terminals once its whole fd table is read (fds.h): which one
// is its controlling terminal (and whether its group had the foreground),
// which pty slaves come with their master, and the bytes queued in a pair
// whose both ends the process holds.
#include "fds.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <ckpt/img/tty_abi.h>

#include "fd_kinds/fd_kind.h"

namespace ckpt::writer {

namespace {

using img::TtyState;

std::optional<TtyState> tty_state(const FdInfo &fi) {
  if (img::FdType(fi.record.type) != img::FdType::CharDevice || fi.state.size() != sizeof(TtyState)) return std::nullopt;
  TtyState s;
  std::memcpy(&s, fi.state.data(), sizeof s);
  return s;
}

void put_tty_state(FdInfo &fi, const TtyState &s) { std::memcpy(fi.state.data(), &s, sizeof s); }

/// Reads what can be read from a terminal fd now, without blocking: in
/// canonical mode FIONREAD counts complete lines only, so the start of a
/// line not yet ended stays in the line discipline (dropped, decision 145).
std::vector<img::u8> read_queued(int fd) {
  std::vector<img::u8> out;
  for (;;) {
    int n = 0;
    if (ioctl(fd, FIONREAD, &n) != 0 || n <= 0) break;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) break;
    size_t at = out.size();
    out.resize(at + size_t(n));
    ssize_t got = read(fd, out.data() + at, size_t(n));
    out.resize(at + size_t(got > 0 ? got : 0));
    if (got <= 0) break;
  }
  return out;
}

/// Moves the bytes queued in both directions of the pair (master at
/// master.record.fd in pid, a slave at slave_fd in the process of
/// slave_pidfd: the same one, or another of the tree) into the master's
/// record, and puts them back so that a process left running keeps them.
img::Status capture_pair_queues(pid_t pid, int pidfd, FdInfo &master, TtyState &ms, int slave_pidfd, int slave_fd) {
  UniqueFd m(int(syscall(SYS_pidfd_getfd, pidfd, master.record.fd, 0)));
  UniqueFd s(int(syscall(SYS_pidfd_getfd, slave_pidfd, slave_fd, 0)));
  if (!m.valid() || !s.valid())
    return img::make_error("%s: pty pair: pidfd_getfd: %s", fd_where(pid, master.record.fd).c_str(), strerror(errno));
  // In packet mode every read from the master starts with a status byte;
  // the data alone is wanted (the mode is the pair's, set back below).
  int off = 0, on = 1;
  if (ms.flags & img::kTtyPacketMode) ioctl(m.get(), TIOCPKT, &off);
  // Non-canonical reads wait for VMIN bytes: VMIN 0 / VTIME 0 while the
  // queue is read (c_cc[6] and c_cc[5]; ICANON is c_lflag 0000002).
  img::KernelTermios2 t = img::termios_of(ms), nowait = t;
  if (!(t.c_lflag & 02)) nowait.c_cc[6] = nowait.c_cc[5] = 0;
  ioctl(s.get(), img::kTcsets2, &nowait);
  std::vector<img::u8> input = read_queued(s.get());
  std::vector<img::u8> output = read_queued(m.get());
  int err = img::push_pty_queues(m.get(), s.get(), t, input, output);
  if (ioctl(s.get(), img::kTcsets2, &t) != 0 && !err) err = errno;
  if (ms.flags & img::kTtyPacketMode) ioctl(m.get(), TIOCPKT, &on);
  if (err)
    return img::make_error("%s: pty pair: putting back its queued bytes: %s", fd_where(pid, master.record.fd).c_str(),
                           strerror(err));
  ms.input_length = img::u32(input.size());
  ms.output_length = img::u32(output.size());
  master.content = std::move(input);
  master.content.insert(master.content.end(), output.begin(), output.end());
  return img::Status::ok();
}

}  // namespace

img::Status finish_terminals(pid_t pid, int pidfd, FdTable &table, int tty_nr, pid_t tpgid, pid_t pgrp) {
  mark_controlling_terminal(table, tty_nr);
  // tty_nr is the kernel's new_encode_dev() of the controlling terminal.
  unsigned ma = (unsigned(tty_nr) >> 8) & 0xfff, mi = (unsigned(tty_nr) & 0xff) | ((unsigned(tty_nr) >> 12) & 0xfff00);
  dev_t ctty = tty_nr ? makedev(ma, mi) : 0;
  auto master_of = [&](img::u32 index) -> FdInfo * {
    for (FdInfo &fi : table.fds)
      if (auto s = tty_state(fi); s && (s->flags & img::kTtyMaster) && s->index == index) return &fi;
    return nullptr;
  };
  for (FdInfo &fi : table.fds) {
    auto s = tty_state(fi);
    if (!s) continue;
    bool terminal = fi.record.flags & img::kFdTerminal;
    if (terminal && ctty && (fi.record.rdev == ctty || fi.record.rdev == makedev(5, 0))) {
      s->flags |= img::kTtyControlling;
      s->foreground_pgrp = tpgid > 0 ? tpgid : 0;
      if (tpgid > 0 && tpgid == pgrp) s->flags |= img::kTtyForeground;
    }
    if (s->flags & img::kTtySlave) {
      bool master_here = master_of(s->index) != nullptr;
      // The slave of a pair the process holds is restored with its pair;
      // one that is also its controlling terminal is not (decision 144).
      if (master_here && terminal) s->flags |= img::kTtyPairIsControlling;
      if (!master_here && !terminal) s->flags |= img::kTtyMasterOutside;
    }
    put_tty_state(fi, *s);
  }
  for (FdInfo &fi : table.fds) {
    auto s = tty_state(fi);
    if (!s || !(s->flags & img::kTtyMaster)) continue;
    auto slave = std::find_if(table.fds.begin(), table.fds.end(), [&](const FdInfo &o) {
      auto os = tty_state(o);
      return os && (os->flags & img::kTtySlave) && os->index == s->index;
    });
    if (slave != table.fds.end()) {
      CKPT_TRY(capture_pair_queues(pid, pidfd, fi, *s, pidfd, slave->record.fd));
    } else {
      // Without a slave open, its input queue cannot be reached, and
      // opening one here would change the pair (its last close makes the
      // master read EIO): bytes waiting there are refused.
      UniqueFd m(int(syscall(SYS_pidfd_getfd, pidfd, fi.record.fd, 0)));
      int n = 0;
      if (m.valid() && ioctl(m.get(), FIONREAD, &n) == 0 && n > 0) s->flags |= img::kTtyQueueUnreadable;
    }
    put_tty_state(fi, *s);
  }
  return img::Status::ok();
}

img::Status join_split_pty_pairs(const std::vector<TreeFdTable> &tree) {
  auto is_slave_of = [](const FdInfo &fi, img::u32 index) {
    auto s = tty_state(fi);
    return s && (s->flags & img::kTtySlave) && s->index == index;
  };
  for (const TreeFdTable &mp : tree)
    for (FdInfo &mfi : mp.table->fds) {
      auto ms = tty_state(mfi);
      if (!ms || !(ms->flags & img::kTtyMaster)) continue;
      // One devpts instance per tree is assumed: the index names the pair.
      bool queues_read = std::any_of(mp.table->fds.begin(), mp.table->fds.end(),
                                     [&](const FdInfo &o) { return is_slave_of(o, ms->index); });
      for (const TreeFdTable &sp : tree) {
        if (sp.table == mp.table) continue;
        for (FdInfo &sfi : sp.table->fds) {
          if (!is_slave_of(sfi, ms->index)) continue;
          TtyState ss = *tty_state(sfi);
          // The tree's own pair, made once at restore (reader tree_plan.cc):
          // not a slave without its master, and not the terminal the tree
          // was run from even where it is a controlling terminal (which
          // kTtyControlling still says) or a standard stream.
          ss.flags &= ~img::u32(img::kTtyMasterOutside);
          sfi.record.flags &= ~img::u32(img::kFdTerminal);
          put_tty_state(sfi, ss);
          if (!queues_read) {
            ms->flags &= ~img::u32(img::kTtyQueueUnreadable);
            CKPT_TRY(capture_pair_queues(mp.pid, mp.pidfd, mfi, *ms, sp.pidfd, sfi.record.fd));
            put_tty_state(mfi, *ms);
            queues_read = true;
          }
        }
      }
    }
  return img::Status::ok();
}

}  // namespace ckpt::writer
