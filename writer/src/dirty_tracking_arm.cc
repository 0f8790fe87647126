// arm_tracking (dirty_tracking.h): a new userfaultfd-WP tracker in a
// frozen process, made by syscalls injected into its main thread, then
// write-protected from outside.
#include "dirty_tracking.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ckpt/img/fault_point.h>

#include "inject.h"

namespace ckpt::writer {

using namespace img;

// Debian 12's linux/userfaultfd.h predates these (6.1); the kernel has them
// from 6.4 (WP_UNPOPULATED, WP_HUGETLBFS_SHMEM) and 6.7 (WP_ASYNC).
static constexpr u64 kFeatureWpHugetlbfsShmem = 1u << 12;
static constexpr u64 kFeatureWpUnpopulated = 1u << 13;
static constexpr u64 kFeatureWpAsync = 1u << 15;
static constexpr u64 kUffdUserModeOnly = 1;  // UFFD_USER_MODE_ONLY (5.11)

// The fd number the tracker takes: the lowest free one at or above this,
// below the soft RLIMIT_NOFILE (or 1024, so that the kernel's fd table
// stays small when the limit is huge): out of the way of the program's
// own fds, which the kernel numbers from the lowest free one up.
static constexpr u64 kTrackerFdCeiling = 1024;
static constexpr u64 kTrackerFdHeadroom = 32;

// The lowest fd number the tracker and its epoch may take (F_DUPFD takes
// the lowest free one at or above it), below `nofile`.
//
// Kernel quirk (fs/file.c, expand_fdtable): growing the fd table of a
// process whose table is shared, as every multi-threaded process's is,
// waits for an RCU grace period (synchronize_rcu) so that no fd_install()
// still sees the old table: about 10 ms on this VM, inside the freeze, at
// every first dump. So the two fds go into the two highest free slots of
// the table the process has now (FDSize), if those are in its upper half;
// only otherwise just below the ceiling, where the table grows once.
static u64 tracker_fd_floor(const ProcessCapture &pc, u64 nofile) {
  const u64 fallback = nofile - kTrackerFdHeadroom;
  const u64 size = std::min<u64>(pc.status.fd_table_size, nofile);
  if (size < 2 * kTrackerFdHeadroom) return fallback;
  // pc.fds lists the open fds in ascending order (the old tracker taken out:
  // close_tracker has closed it by now, or it is reused and not armed again).
  std::vector<bool> open(size, false);
  for (const FdInfo &f : pc.fds.fds)
    if (f.record.fd >= 0 && u64(f.record.fd) < size) open[size_t(f.record.fd)] = true;
  int found = 0;
  for (u64 slot = size; slot-- > size / 2;) {
    if (open[size_t(slot)]) continue;
    // The lower of the two highest free slots: every slot between it and
    // the higher one is taken, so the second F_DUPFD lands on the higher.
    if (++found == 2) return slot;
  }
  return fallback;
}

// Mappings worth tracking: the private writable memory of 4 KiB pages that
// selection would compare (parent_compare.cc); not [vdso], I/O or hugetlb.
static bool trackable(const VmaPlan &v) {
  // Tracking registers base-page mappings only.
  return private_base_page_memory(v) && (v.map.prot & PROT_WRITE) && !v.map.has_flag("io");
}

namespace {

// The syscalls of one arming, in the process's main thread.
class TrackerMaker {
 public:
  explicit TrackerMaker(Injector &inj) : inj_(inj) {}

  // A new userfaultfd in async write-protect mode, or a negative errno.
  // A failed UFFDIO_API leaves the context unusable, so every try uses a
  // fresh one; WP_UNPOPULATED (markers on empty page table entries) and
  // WP_HUGETLBFS_SHMEM are asked for where the kernel has them.
  Expected<long> open_async_wp() {
    const u64 tries[] = {kFeatureWpAsync | kFeatureWpUnpopulated | kFeatureWpHugetlbfsShmem,
                         kFeatureWpAsync | kFeatureWpUnpopulated, kFeatureWpAsync};
    long last = -EINVAL;
    for (u64 features : tries) {
      // Without vm.unprivileged_userfaultfd, a process lacking
      // CAP_SYS_PTRACE may only make a user-mode-only one (EPERM otherwise);
      // async write-protection resolves in the kernel either way.
      auto fd = inj_.call(SYS_userfaultfd, {u64(O_CLOEXEC | O_NONBLOCK)});
      if (!fd) return fd;
      if (*fd == -EPERM) fd = inj_.call(SYS_userfaultfd, {u64(O_CLOEXEC | O_NONBLOCK) | kUffdUserModeOnly});
      if (!fd) return fd;
      if (*fd < 0) return *fd;
      uffdio_api api{};
      api.api = UFFD_API;
      api.features = features;
      auto r = inj_.call_inout(SYS_ioctl, {u64(*fd), u64(UFFDIO_API), 0}, 2, &api, sizeof api);
      if (!r) return r.error();
      if (*r == 0 && (api.features & kFeatureWpAsync)) return *fd;
      last = *r < 0 ? *r : -EINVAL;
      CKPT_TRY(close(*fd));
    }
    return last;
  }

  Status close(long fd) {
    auto r = inj_.call(SYS_close, {u64(fd)});
    if (!r) return r.error();
    return {};
  }

  Expected<long> call(long nr, std::initializer_list<u64> args) { return inj_.call(nr, args); }

  // The epoch memfd (dirty_tracking.h), empty, close-on-exec; or a
  // negative errno.
  Expected<long> make_epoch() {
    char name[32] = {};
    std::strncpy(name, kTrackerEpochName, sizeof name - 1);
    return inj_.call_inout(SYS_memfd_create, {0, u64(MFD_CLOEXEC)}, 0, name, sizeof name);
  }

  // Marks fd as ours (O_APPEND) and moves it to the lowest free slot at or
  // above `from`; the new fd, or a negative errno (fd closed either way).
  Expected<long> mark_and_move(long fd, u64 from) {
    auto fl = call(SYS_fcntl, {u64(fd), F_SETFL, u64(O_APPEND | O_NONBLOCK)});
    if (!fl) return fl;
    auto moved = call(SYS_fcntl, {u64(fd), F_DUPFD_CLOEXEC, from});
    if (!moved) return moved;
    CKPT_TRY(close(fd));
    if (*fl < 0 || *moved < 0) {
      if (*moved >= 0) CKPT_TRY(close(*moved));
      return *fl < 0 ? *fl : *moved;
    }
    return *moved;
  }

  // UFFDIO_REGISTER in write-protect mode; 0 or a negative errno.
  Expected<long> register_wp(long fd, u64 start, u64 end) {
    uffdio_register reg{};
    reg.range.start = start;
    reg.range.len = end - start;
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    return inj_.call_inout(SYS_ioctl, {u64(fd), u64(UFFDIO_REGISTER), 0}, 2, &reg, sizeof reg);
  }

 private:
  Injector &inj_;
};

// Seccomp filters of the main thread stay out of the way of the injected
// syscalls as in capture.cc (PTRACE_O_SUSPEND_SECCOMP); without it no
// tracker is made: a filter might kill the process for a userfaultfd().
class SeccompSuspension {
 public:
  SeccompSuspension(pid_t tid, bool filtered) : tid_(tid) {
    if (!filtered) return;
    suspended_ = ptrace(PTRACE_SETOPTIONS, tid, 0, kFreezeOptions | PTRACE_O_SUSPEND_SECCOMP) == 0;
    refused_ = !suspended_;
  }
  ~SeccompSuspension() {
    if (suspended_) ptrace(PTRACE_SETOPTIONS, tid_, 0, kFreezeOptions);
  }
  bool refused() const { return refused_; }

 private:
  // freeze.cc's options: PTRACE_SETOPTIONS replaces them all.
  static constexpr long kFreezeOptions = PTRACE_O_TRACECLONE | PTRACE_O_TRACESYSGOOD;
  pid_t tid_;
  bool suspended_ = false, refused_ = false;
};

// Adjacent trackable mappings, registered with one ioctl each.
std::vector<AddressRange> trackable_runs(const std::vector<VmaPlan> &plan) {
  std::vector<AddressRange> runs;
  for (const VmaPlan &v : plan) {
    if (!trackable(v)) continue;
    if (!runs.empty() && runs.back().end == v.map.start)
      runs.back().end = v.map.end;
    else
      runs.push_back({v.map.start, v.map.end});
  }
  return runs;
}

}  // namespace

// Runs `body` with an Injector on the main thread of the frozen process
// (seccomp suspended as capture.cc does); `why` says why it could not.
template <typename Body>
static Status with_main_thread(const ProcessCapture &pc, std::string &why, Body &&body) {
  if (pc.threads.empty()) return make_error("process %d has no threads", pc.pid);
  pid_t tid = pc.threads[0].tid;
  const u64 insn = pc.syscall_insn;
  if (!insn) {
    why = "no [vdso] to run syscalls through";
    return {};
  }
  SeccompSuspension seccomp(tid, !pc.thread_status.empty() && pc.thread_status[0].seccomp_mode != 0);
  if (seccomp.refused()) {
    why = "seccomp filters could not be suspended";
    return {};
  }
  // The thread's registers as they are now (libckpt's caller has had its
  // captured ones changed): the Injector puts them back.
  UserRegs regs{};
  if (ptrace(PTRACE_GETREGS, tid, 0, &regs) < 0) return make_error("PTRACE_GETREGS(%d): %s", tid, strerror(errno));
  Injector inj(tid, insn, regs);
  TrackerMaker maker(inj);
  Status s = body(maker);
  // The thread leaves the last syscall here, and a close()'s final fput
  // (task work) runs on that way out: the old context is gone when this
  // returns.
  Status back = inj.restore();
  if (!s) return s.error().context("dirty tracking in process " + std::to_string(pc.pid));
  return back;
}

// Registers the trackable runs of pc with the tracker at `slot` (already
// registered mappings of the same tracker are left as they are: the
// kernel skips them) and returns the ranges it holds.
static Expected<std::vector<AddressRange>> register_runs(TrackerMaker &maker, long slot, const ProcessCapture &pc) {
  std::vector<AddressRange> ranges;
  for (const AddressRange &run : trackable_runs(pc.memory)) {
    auto r = maker.register_wp(slot, run.start, run.end);
    if (!r) return r.error();
    if (*r == 0) {
      ranges.push_back(run);
      continue;
    }
    // One mapping of the run the kernel will not track (VM_DROPPABLE,
    // a special mapping, one still registered elsewhere): the others
    // one by one.
    for (const VmaPlan &v : pc.memory) {
      if (!trackable(v) || v.map.start < run.start || v.map.end > run.end) continue;
      auto one = maker.register_wp(slot, v.map.start, v.map.end);
      if (!one) return one.error();
      if (*one == 0) ranges.push_back({v.map.start, v.map.end});
    }
  }
  return ranges;
}

// Write-protects every page of `ranges` that counts as written: after a
// registration every page does (no uffd-wp bit yet; with WP_UNPOPULATED
// the empty ones get a marker), after an earlier reset only those written
// since. Returns the ranges protected; one left unprotected stays
// registered but is not listed (the next dump compares it).
Expected<std::vector<AddressRange>> protect_written(pid_t pid, const std::vector<AddressRange> &ranges) {
  std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
  int pagemap = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) return make_error("%s: %s", path.c_str(), strerror(errno));
  std::vector<AddressRange> armed;
  for (const AddressRange &r : ranges)
    if (scan_written(pagemap, r.start, r.end, true, nullptr) == 0) armed.push_back(r);
  ::close(pagemap);
  return armed;
}

// Writes the epoch memfd of pid through a copy of its fd (epoch_fd_copy).
static Status write_epoch(pid_t pid, int fd, const TrackerEpoch &epoch) {
  CKPT_TRY(fault_point("dump-tracker-epoch-write"));
  int mine = -1;
  CKPT_TRY_ASSIGN(mine, epoch_fd_copy(pid, fd));
  // Kernel quirk (pwrite(2) BUGS): on a file opened O_APPEND, which the
  // mark makes it, pwrite appends whatever the offset says. So the file is
  // emptied first and written at its end; dying in between leaves an
  // empty epoch, which matches no image and is not reused.
  ssize_t n = -1;
  if (ftruncate(mine, 0) == 0) n = write(mine, &epoch, sizeof epoch);
  int e = errno;
  ::close(mine);
  if (n != ssize_t(sizeof epoch))
    return make_error("the dirty tracker's epoch in process %d: %s", pid, n < 0 ? strerror(e) : "short write");
  return {};
}

Status close_tracker(const ProcessCapture &pc, const TrackerFd &old) {
  if (old.fd < 0 && old.epoch_fd < 0) return {};
  std::string why;
  return with_main_thread(pc, why, [&](TrackerMaker &maker) -> Status {
    if (old.fd >= 0) CKPT_TRY(maker.close(old.fd));
    if (old.epoch_fd >= 0) CKPT_TRY(maker.close(old.epoch_fd));
    return {};
  });
}

Expected<ArmedTracker> arm_tracking(const ProcessCapture &pc, const u8 (&image_id)[16], bool protect_now) {
  ArmedTracker out;
  u64 nofile = kTrackerFdCeiling;
  for (const RlimitRecord &r : pc.rlimits)
    if (r.resource == RLIMIT_NOFILE) nofile = std::min<u64>(r.cur, kTrackerFdCeiling);
  if (nofile <= 2 * kTrackerFdHeadroom) {
    out.why = "RLIMIT_NOFILE leaves no room for the tracker";
    return out;
  }
  const u64 floor = tracker_fd_floor(pc, nofile);
  long slot = -1, epoch_slot = -1;
  CKPT_TRY(with_main_thread(pc, out.why, [&](TrackerMaker &maker) -> Status {
    auto fd = maker.open_async_wp();
    if (!fd) return fd.error();
    if (*fd < 0) {
      out.why = std::string("userfaultfd with UFFD_FEATURE_WP_ASYNC: ") + strerror(int(-*fd));
      return {};
    }
    // The mark that tells the tracker from a program's own userfaultfd.
    auto moved = maker.mark_and_move(*fd, floor);
    if (!moved) return moved.error();
    if (*moved < 0) {
      out.why = std::string("no place for the tracker fd: ") + strerror(int(-*moved));
      return {};
    }
    slot = *moved;
    // Its epoch beside it. Without one the tracker would be scanned at
    // every dump but never trusted (tracker_continues): none is armed.
    auto epoch = maker.make_epoch();
    if (!epoch) return epoch.error();
    long epoch_error = *epoch;
    if (*epoch >= 0) {
      auto at = maker.mark_and_move(*epoch, floor);
      if (!at) return at.error();
      epoch_slot = epoch_error = *at;
    }
    if (epoch_slot >= 0 && !fault_point("dump-tracker-epoch-memfd")) epoch_error = -EIO;
    if (epoch_error < 0) {
      if (epoch_slot >= 0) CKPT_TRY(maker.close(epoch_slot));
      CKPT_TRY(maker.close(slot));
      slot = epoch_slot = -1;
      out.why = std::string("no epoch memfd for the tracker: ") + strerror(int(-epoch_error));
      return {};
    }
    auto ranges = register_runs(maker, slot, pc);
    if (!ranges) return ranges.error();
    out.ranges = ranges.take();
    if (out.ranges.empty()) {
      CKPT_TRY(maker.close(slot));
      if (epoch_slot >= 0) CKPT_TRY(maker.close(epoch_slot));
      slot = epoch_slot = -1;
      out.why = "no mapping to track";
    }
    return {};
  }));
  if (slot < 0) return out;

  struct stat st {};
  std::string link = "/proc/" + std::to_string(pc.pid) + "/fd/" + std::to_string(slot);
  if (stat(link.c_str(), &st) != 0) return make_error("%s: %s", link.c_str(), strerror(errno));
  TrackerEpoch epoch{kTrackerEpochMagic, pc.pid, pc.stat.start_time, u64(st.st_ino), {}};
  std::memcpy(epoch.image_id, image_id, sizeof epoch.image_id);
  if (Status written = write_epoch(pc.pid, int(epoch_slot), epoch); !written) {
    // Not trusted without its epoch (as above): closed again, the next
    // --parent dump compares.
    CKPT_TRY(close_tracker(pc, TrackerFd{int(slot), 0, int(epoch_slot), {}}));
    out.why = written.error().message();
    return out;
  }
  out.ino = st.st_ino;
  // Pre-armed (dirty_tracking_prearm.h): the caller protects the pages
  // once the process runs again.
  if (!protect_now) return out;
  auto armed = protect_written(pc.pid, out.ranges);
  if (!armed) return armed.error();
  out.ranges = armed.take();
  return out;
}

Expected<ArmedTracker> continue_tracking(const ProcessCapture &pc, const TrackerFd &old, const u8 (&image_id)[16]) {
  ArmedTracker out;
  // The new epoch first: from here on no image before this dump matches
  // the tracker, whether or not this dump ends with an image.
  TrackerEpoch epoch = old.epoch;
  std::memcpy(epoch.image_id, image_id, sizeof epoch.image_id);
  if (Status written = write_epoch(pc.pid, old.epoch_fd, epoch); !written) {
    // The tracker is not reset and this image names none: the next dump
    // on it compares. The epoch names an earlier dump still (the tracker
    // saw every write since), or nothing (emptied: never trusted again).
    out.why = written.error().message();
    return out;
  }
  CKPT_TRY(with_main_thread(pc, out.why, [&](TrackerMaker &maker) -> Status {
    auto ranges = register_runs(maker, old.fd, pc);
    if (!ranges) return ranges.error();
    out.ranges = ranges.take();
    return {};
  }));
  if (out.ranges.empty()) {
    if (out.why.empty()) out.why = "no mapping to track";
    return out;
  }
  // Pages written between the last reset and this freeze are protected
  // again now, inside it: a write after the release is seen by the next
  // dump, and none before it is lost (this image holds it).
  auto armed = protect_written(pc.pid, out.ranges);
  if (!armed) return armed.error();
  out.ranges = armed.take();
  out.ino = old.ino;
  out.reused = true;
  return out;
}

}  // namespace ckpt::writer
