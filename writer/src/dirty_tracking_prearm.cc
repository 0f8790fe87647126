// prearm_trackers (dirty_tracking_prearm.h): a first dump's trackers made
// before the freeze, one short stop per process, their pages protected
// from outside while the tree runs.
#include "dirty_tracking_prearm.h"

#include <cerrno>
#include <chrono>
#include <linux/seccomp.h>
#include <cstring>
#include <string>
#include <vector>

#include "capture.h"
#include "dirty_tracking.h"
#include "dump_guard.h"
#include "freeze.h"
#include "inject.h"
#include "memory.h"
#include "procfs.h"
#include "procfs_text.h"
#include "smaps_before.h"
#include "unsupported_memory.h"

namespace ckpt::writer {

using namespace img;
using Clock = std::chrono::steady_clock;

namespace {

// The fd numbers of pid, ascending, and whether any is a userfaultfd or an
// epoch memfd (ours from an earlier dump, inherited, or the program's own
// userfaultfd): such a process is left to the freeze, which reuses, closes
// or refuses as before.
struct FdScan {
  std::vector<int> fds;
  bool tracker_kind = false;
};

Expected<FdScan> scan_fds(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  FdScan out;
  CKPT_TRY_ASSIGN(out.fds, procfs_text::list_numeric_dir(dir));  // ascending
  for (int fd : out.fds) {
    auto link = read_link(dir + "/" + std::to_string(fd));
    if (link && tracker_kind(*link)) out.tracker_kind = true;
  }
  return out;
}

// What arm_tracking reads of a ProcessCapture, read for the stopped
// process `frozen` (a full capture would cost as much as the freeze's).
Expected<ProcessCapture> arming_facts(const FrozenProcess &frozen, const std::vector<MapEntry> &maps,
                                      const FdScan &fds) {
  ProcessCapture pc;
  pc.pid = frozen.pid();
  CKPT_TRY_ASSIGN(pc.stat, read_stat(pc.pid));
  CKPT_TRY_ASSIGN(pc.status, read_status(pc.pid));
  ThreadCapture main;
  main.tid = frozen.threads()[0].tid;
  pc.threads.push_back(main);
  // The leader's status is the process's (read once); another thread's
  // (a leader gone before its threads) is its own.
  if (main.tid == pc.pid) {
    pc.thread_status.push_back(pc.status);
  } else {
    ProcStatus main_status;
    CKPT_TRY_ASSIGN(main_status, read_status(pc.pid, main.tid));
    pc.thread_status.push_back(main_status);
  }
  CKPT_TRY_ASSIGN(pc.rlimits, read_rlimits(pc.pid));
  for (int fd : fds.fds) {
    FdInfo f;
    f.record.fd = fd;
    pc.fds.fds.push_back(f);
  }
  pc.maps = maps;
  pc.memory = outline_vmas(maps);
  pc.syscall_insn = find_vdso_syscall(pc.pid, maps);
  return pc;
}

}  // namespace

Expected<PreArmed> prearm_trackers(pid_t root, DumpGuard &guard, const std::map<pid_t, std::vector<MapEntry>> &smaps) {
  PreArmed out;
  // The tree as it is now, with each process's smaps (VmFlags decide what
  // is trackable); a process born later is armed in the freeze.
  std::map<pid_t, std::vector<MapEntry>> read_here;
  if (smaps.empty()) read_here = read_smaps_before_freeze(root, img::Chain{});
  const u8 no_image[16] = {};
  // Memory the dump refuses (a range a lazy restore still serves, among
  // others) is refused here, before any process is stopped; the freeze
  // checks again at the instant (capture.cc).
  for (const auto &[pid, maps] : smaps.empty() ? read_here : smaps) CKPT_TRY(check_memory_supported(pid, maps));
  for (const auto &[pid, maps] : smaps.empty() ? read_here : smaps) {
    auto before = scan_fds(pid);
    if (!before || before->tracker_kind) continue;
    auto t0 = Clock::now();
    auto f = FrozenProcess::freeze(pid);
    if (!f) continue;  // the freeze proper says why, if it still applies
    FrozenProcess frozen = f.take();
    // Stopped now: the fd table and the mappings are those arming sees.
    // What cannot be read here (the process gone meanwhile) leaves it to
    // the freeze, which says why if it still applies.
    auto fds = scan_fds(pid);
    if (!fds || fds->tracker_kind) continue;
    auto same = read_maps(pid, /*brief=*/true);
    if (!same) continue;
    // A mapping changed since smaps was read: its VmFlags are not known,
    // so this process is armed in the freeze, as before.
    bool changed = same->size() != maps.size();
    for (size_t i = 0; !changed && i < maps.size(); i++) changed = !same_header((*same)[i], maps[i]);
    if (changed) continue;
    auto pc = arming_facts(frozen, maps, *fds);
    if (!pc) continue;
    // A main thread in seccomp strict mode is borrowed only in the freeze,
    // which refuses it or, with --inject-strict-seccomp, takes the risk
    // knowingly (DECISIONS 179).
    if (pc->thread_status[0].seccomp_mode == SECCOMP_MODE_STRICT) continue;
    guard.arming(pid, false);
    auto armed = arm_tracking(*pc, no_image, /*protect_now=*/false);
    if (!armed) return armed.error();
    // From the release on the program may make userfaultfds of its own:
    // the guard stops counting an unmarked one as ours (dump_guard.h).
    guard.arming_settled(pid);
    CKPT_TRY(frozen.release());
    double stopped = std::chrono::duration<double>(Clock::now() - t0).count();
    if (stopped > out.stopped_seconds) out.stopped_seconds = stopped;
    // Not armed (seccomp, no [vdso], RLIMIT_NOFILE, EPERM): the freeze
    // tries again and gives the note it gives.
    if (!armed->ino) continue;
    out.pids.insert(pid);
    out.inos.insert(armed->ino);
    // While it runs: a page written during the walk counts as written and
    // is protected again in the freeze (continue_tracking), as is one the
    // walk never reached (a child that exited meanwhile: no pagemap).
    (void)protect_written(pid, armed->ranges);
  }
  return out;
}

}  // namespace ckpt::writer
