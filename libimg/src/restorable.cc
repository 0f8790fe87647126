#include <ckpt/img/restorable.h>

#include "seccomp_check.h"

#include <algorithm>
#include <cstdio>
#include <sys/sysmacros.h>

namespace ckpt::img {

bool is_stateless_char_device(u64 rdev) {
  // Major 1 is the kernel's "mem" driver: 3 null, 5 zero, 7 full,
  // 8 random, 9 urandom hold no per-open state. 1:1 (mem), 1:2 (kmem),
  // 1:4 (port) and 1:11 (kmsg, a read position in the log) do.
  unsigned ma = major(rdev), mi = minor(rdev);
  return ma == 1 && (mi == 3 || mi == 5 || mi == 7 || mi == 8 || mi == 9);
}

// Names a character device restore cannot reopen faithfully.
static std::string char_device_offender(const FdRecord &f, std::string_view path) {
  unsigned ma = major(f.rdev), mi = minor(f.rdev);
  std::string p(path);
  // /dev/ptmx is 5:2; an open master also shows that rdev. Reopening it
  // would make a fresh, unrelated pty pair.
  if (ma == 5 && mi == 2) return "pty master " + p;
  // Unix98 pty slaves (majors 136..143), consoles and serial lines (4),
  // /dev/tty (5:0), /dev/console (5:1): kFdTerminal marks the terminal the
  // program was run from, which restore reconnects (DECISIONS.md 27); any
  // other one is the process's own, and reconnecting it would lose its
  // other end, settings and queued bytes.
  if (ma >= 136 && ma <= 143) return "pty " + p + " (not the terminal it was run from)";
  if (ma == 4 || (ma == 5 && mi <= 1)) return "terminal " + p + " (not the terminal it was run from)";
  return "character device " + p + " (" + std::to_string(ma) + ":" + std::to_string(mi) + ")";
}

static const char *fd_kind_name(FdType t) {
  switch (t) {
    case FdType::BlockDevice: return "block device";
    case FdType::Socket: return "socket";
    case FdType::EventFd: return "eventfd";
    case FdType::SignalFd: return "signalfd";
    case FdType::TimerFd: return "timerfd";
    case FdType::Epoll: return "eventpoll";
    case FdType::Inotify: return "inotify";
    default: return nullptr;
  }
}

std::vector<Unsupported> unsupported_state(const CkptView &v) {
  std::vector<Unsupported> out;
  auto add = [&](i32 pid, std::string what) { out.push_back({pid, std::move(what)}); };
  char buf[96];

  // A tree is one root view plus a Tree note (each further process is
  // checked on its own view); several tasks in one view are not a format.
  if (v.tasks.records.size() > 1)
    add(0, "a process tree of " + std::to_string(v.tasks.records.size()) + " processes");
  if (v.parent) add(0, "an incremental image (merge the chain first)");
  else {
    bool refers_to_parent = false;
    for (const PageRangeRecord &r : v.ranges.records)
      if (static_cast<PageSource>(r.source) == PageSource::Parent) refers_to_parent = true;
    if (refers_to_parent) add(0, "pages in a parent image");
  }

  for (const FdRecord &f : v.fds.records) {
    auto type = static_cast<FdType>(f.type);
    std::string_view path = v.fds.str_or_empty(f.path);
    std::string fd = "fd " + std::to_string(f.fd) + " ";
    switch (type) {
      case FdType::Regular:
      case FdType::Directory:
      case FdType::PipeRead:
      case FdType::PipeWrite:
      case FdType::Fifo:
        break;
      case FdType::MemFd:
        if (f.content.length == 0 && f.size != 0) add(f.pid, fd + "memfd " + std::string(path) + " (contents not captured)");
        break;
      case FdType::CharDevice:
        if (!(f.flags & kFdTerminal) && !is_stateless_char_device(f.rdev)) add(f.pid, fd + char_device_offender(f, path));
        break;
      default:
        if (const char *name = fd_kind_name(type)) add(f.pid, fd + name);
        else add(f.pid, fd + std::string(path.empty() ? "of an unknown kind" : path));
    }
  }
  for (const TimerRecord &t : v.timers.records)
    if (static_cast<TimerKind>(t.kind) == TimerKind::Posix) add(t.pid, "POSIX timer " + std::to_string(t.timer_id));
  for (const VmaRecord &m : v.vmas.records) {
    if (static_cast<VmaKind>(m.kind) == VmaKind::SysvShm) {
      std::snprintf(buf, sizeof buf, "SysV shared memory at 0x%llx", (unsigned long long)m.start);
      add(m.pid, buf);
    } else if (m.kind > static_cast<u32>(VmaKind::Hugetlb)) {
      // Written by a newer imgtool: a kind of memory this one cannot map.
      std::snprintf(buf, sizeof buf, "a mapping at 0x%llx of unknown kind %u", (unsigned long long)m.start, m.kind);
      add(m.pid, buf);
    } else if (m.end > 0x7ffffffff000ull && static_cast<VmaKind>(m.kind) != VmaKind::Vsyscall) {
      // Restore maps with 4-level page tables' 47-bit user address space.
      std::snprintf(buf, sizeof buf, "a mapping at 0x%llx above the 47-bit address space", (unsigned long long)m.start);
      add(m.pid, buf);
    }
  }
  for (Unsupported &u : unsupported_seccomp(v)) out.push_back(std::move(u));
  return out;
}

std::string unsupported_message(const std::vector<Unsupported> &list) {
  // Groups in order of first appearance: the image as a whole, then each
  // pid as the image lists it.
  std::vector<i32> order;
  for (const Unsupported &u : list)
    if (std::find(order.begin(), order.end(), u.pid) == order.end()) order.push_back(u.pid);
  std::string msg;
  for (i32 pid : order) {
    if (!msg.empty()) msg += "; ";
    msg += pid ? "pid " + std::to_string(pid) + ": " : std::string("image: ");
    bool first = true;
    for (const Unsupported &u : list) {
      if (u.pid != pid) continue;
      if (!first) msg += ", ";
      msg += u.what;
      first = false;
    }
    msg += ": not supported";
  }
  return msg;
}

Expected<NotesView> view_of_notes(const ImageNotes &notes) {
  // The view points into the encoded notes' buffers, which stay put when
  // the NotesView is moved.
  NotesView nv;
  nv.notes = notes.encode();
  auto view = decode_ckpt_notes(nv.notes);
  if (!view) return view.error();
  nv.view = view.take();
  return nv;
}

}  // namespace ckpt::img
