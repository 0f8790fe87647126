#include <ckpt/img/restorable.h>

#include <ckpt/img/fd_kinds.h>
#include <ckpt/img/file_identity.h>

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

// Restore makes POSIX timers in the process before its other threads
// exist (reader/src/process_setup.cc): one aimed at another thread
// (SIGEV_THREAD_ID, as glibc's SIGEV_THREAD timers are, or a thread's CPU
// clock) has no thread to aim at yet.
static std::string posix_timer_refusal(const TimerRecord &t) {
  std::string what = "POSIX timer " + std::to_string(t.timer_id);
  constexpr i32 kSigevThreadId = 4;
  if ((t.sigev_notify & kSigevThreadId) && t.sigev_tid != t.pid)
    return what + " (it signals thread " + std::to_string(t.sigev_tid) + ", not the main thread)";
  // A CPU clock id (kernel/time/posix-cpu-timers.c): ~pid << 3 | type,
  // bit 2 for a thread's; pid 0 means the caller.
  if (t.clock_id < 0) {
    i32 owner = ~(t.clock_id >> 3);
    if (owner != 0 && owner != t.pid)
      return what + " (on the CPU clock of " + ((t.clock_id & 4) ? "thread " : "process ") + std::to_string(owner) + ")";
  }
  return "";
}

// An attached SysV shm segment comes back by shmat of the segment its
// SysvIpc record recreates (the mapping's inode number is the shmid,
// ipc/shm.c newseg()): whole, from its first byte, as shmat maps it.
static std::string sysv_shm_refusal(const CkptView &v, const VmaRecord &m) {
  char buf[128];
  auto seg = std::find_if(v.sysv_ipc.records.begin(), v.sysv_ipc.records.end(), [&](const SysvIpcRecord &r) {
    return static_cast<SysvIpcKind>(r.kind) == SysvIpcKind::Shm && u64(r.id) == m.ino;
  });
  if (seg == v.sysv_ipc.records.end()) {
    std::snprintf(buf, sizeof buf, "SysV shared memory at 0x%llx (segment %llu is not in the image)",
                  (unsigned long long)m.start, (unsigned long long)m.ino);
    return buf;
  }
  u64 whole = (seg->size + kPageSize - 1) & ~(kPageSize - 1);
  if (m.pgoff != 0 || m.end - m.start != whole) {
    std::snprintf(buf, sizeof buf, "SysV shared memory at 0x%llx (a part of segment %d: partly unmapped)",
                  (unsigned long long)m.start, seg->id);
    return buf;
  }
  return "";
}

std::vector<Unsupported> unsupported_state(const CkptView &v) {
  std::vector<Unsupported> out;
  auto add = [&](i32 pid, std::string what) { out.push_back({pid, std::move(what)}); };
  char buf[96];

  // A tree is one root view plus a Tree note (each further process is
  // checked on its own view); several tasks in one view are not a format.
  if (v.tasks.records.size() > 1)
    add(0, "a process tree of " + std::to_string(v.tasks.records.size()) + " processes");
  // An incremental image is restored through its chain (restore merges it
  // first, FORMAT.md §12.2); Parent ranges without a Parent note are not.
  if (!v.parent) {
    bool refers_to_parent = false;
    for (const PageRangeRecord &r : v.ranges.records)
      if (static_cast<PageSource>(r.source) == PageSource::Parent) refers_to_parent = true;
    if (refers_to_parent) add(0, "pages in a parent image");
  }

  // Each kind's own policy (fd_kinds.cc); a number this build does not
  // know was written by a newer imgtool and is refused by its path.
  for (const FdRecord &f : v.fds.records) {
    std::string_view path = v.fds.str_or_empty(f.path);
    const FdKindInfo *kind = fd_kind_info(f.type);
    std::string why = kind ? kind->refusal(f, path) : std::string(path.empty() ? "of an unknown kind" : path);
    if (why.empty() && kind && kind->state_refusal) why = kind->state_refusal(v.fds, f);
    if (!why.empty()) add(f.pid, "fd " + std::to_string(f.fd) + " " + why);
  }
  for (const TimerRecord &t : v.timers.records)
    if (static_cast<TimerKind>(t.kind) == TimerKind::Posix)
      if (std::string why = posix_timer_refusal(t); !why.empty()) add(t.pid, why);
  for (const VmaRecord &m : v.vmas.records) {
    if (static_cast<VmaKind>(m.kind) == VmaKind::SysvShm) {
      if (std::string why = sysv_shm_refusal(v, m); !why.empty()) add(m.pid, why);
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
  // A process's POSIX locks on an inode go when it closes any fd of that
  // inode (fcntl(2)), and restore maps files through fds of its own that
  // it closes: a POSIX-locked file that is also mapped would lose them.
  for (const LockRecord &l : v.locks.records) {
    if (static_cast<LockKind>(l.kind) != LockKind::Posix) continue;
    auto fd = std::find_if(v.fds.records.begin(), v.fds.records.end(),
                           [&](const FdRecord &f) { return f.pid == l.pid && f.fd == l.fd; });
    if (fd == v.fds.records.end()) continue;
    bool mapped = std::any_of(v.vmas.records.begin(), v.vmas.records.end(), [&](const VmaRecord &m) {
      return m.pid == l.pid && same_file(m, *fd) && static_cast<VmaKind>(m.kind) == VmaKind::File;
    });
    if (mapped) add(l.pid, "fd " + std::to_string(l.fd) + " POSIX lock on a file that is also mapped");
  }
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
