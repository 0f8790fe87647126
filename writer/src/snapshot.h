// Snapshot mode (the "millisecond freeze", DECISIONS.md 131): while the
// target is frozen an injected clone3 makes a copy-on-write copy of it, born
// frozen in a cgroup v2 of our own (CLONE_INTO_CGROUP, cgroup.freeze=1), so
// it never runs a single instruction of the program. The target is let go
// and its memory is read out of that copy, which holds every page as of the
// instant of the clone. Memory fork does not copy (MAP_SHARED, DONTFORK,
// WIPEONFORK, VM_IO, hugetlb) is read while the target is still frozen.
//
// The pages of every other mapping are planned from the copy after the
// release (snapshot_plan.h). Afterwards the copy is killed and its zombie
// reaped inside the target (an injected wait4(__WCLONE) in its main
// thread, stopped alone for it): exit_signal 0
// makes it a "clone child", so the program gets no SIGCHLD and its wait()
// never sees it. The dump guard (dump_guard.h) does the same cleanup if
// imgtool dies before it could (kill -9 included), before anyone sees
// imgtool gone.
#pragma once

#include "snapshot_cgroup.h"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>

#include "capture.h"
#include "inject.h"
#include "snapshot_witness.h"

namespace ckpt::writer {

/// Bytes of some Image runs read while the target was frozen: memory that a
/// fork does not copy (or copies as zeros). Keyed by run start.
class PagesReadEarlier {
 public:
  /// The bytes of [addr, addr+len) if one stored run holds all of them.
  const img::u8 *find(img::u64 addr, img::u64 len) const;
  void add(img::u64 addr, std::vector<img::u8> bytes) { runs_[addr] = std::move(bytes); }
  img::u64 bytes() const;

 private:
  std::map<img::u64, std::vector<img::u8>> runs_;
};

/// The copy-on-write copy of one process.
struct ProcessSnapshot {
  pid_t target = 0;        ///< the process copied
  pid_t copy = 0;          ///< its frozen copy, read instead of it
  int copy_pidfd = -1;
  pid_t leader = 0;        ///< the target's main thread, which reaps the copy
  u64 syscall_insn = 0;    ///< the `syscall` in its [vdso] the injections borrow
  /// The plan of the memory read while frozen (snapshot_plan.h), and its bytes.
  std::vector<VmaPlan> early_plan;
  PagesReadEarlier early;
  /// Each thread's live stack as it was when frozen (snapshot_witness.h).
  std::vector<StackWitness> witnesses;
};

class DumpGuard;

/// The snapshots of a dump: one cgroup, a copy per process.
class Snapshot {
 public:
  /// Copies every process in `procs` (all frozen, all captured). An error
  /// says why snapshot mode is not possible; nothing is left behind then
  /// and the caller dumps with the full freeze. Every change to a target
  /// is journalled in `guard` before it is made.
  /// `cgroup`: the one made before the freeze, if any (taken over).
  static img::Expected<std::unique_ptr<Snapshot>> take(const std::vector<const ProcessCapture *> &procs,
                                                      DumpGuard &guard, PreparedCgroup *cgroup = nullptr);

  ~Snapshot();
  Snapshot(const Snapshot &) = delete;
  Snapshot &operator=(const Snapshot &) = delete;

  const ProcessSnapshot &of(size_t i) const { return *copies_[i]; }

  /// Kills the copies and reaps them inside their targets (each target's
  /// main thread is stopped for the moment of the wait4; the whole target
  /// where that fails). Returns the seconds they were stopped for it.
  img::Expected<double> finish();

 private:
  Snapshot() = default;
  /// Removes the cgroup.
  void tidy();
  std::string cgroup_;        ///< our cgroup v2 directory
  std::vector<std::unique_ptr<ProcessSnapshot>> copies_;
  bool finished_ = false;
};

/// Kills the copy `child` of `target` (if alive), waits for its exit and
/// reaps it by an injected wait4 in the target. Used by finish().
img::Status reap_snapshot_copy(pid_t target, pid_t child, int child_pidfd);

/// Kills a copy and waits until it is a zombie (its pidfd polls readable);
/// pidfd -1: one is opened for the wait.
void kill_copy(pid_t child, int pidfd);

/// Freezes target (again: retrying while a dying imgtool still traces
/// it), runs `body` with an Injector on its main thread (seccomp filters
/// suspended) and lets it go. A target that is gone is no error.
img::Status inject_in_refrozen(pid_t target, const std::function<img::Status(Injector &)> &body);

/// wait4(copy, NULL, __WCLONE, NULL) through inj, in target.
img::Status reap_with(Injector &inj, pid_t target, pid_t copy);

}  // namespace ckpt::writer
