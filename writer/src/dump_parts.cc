#include "dump_parts.h"

#include "snapshot_plan.h"

namespace ckpt::writer {

using namespace img;

TableBuilder<TreeRecord> tree_table(const std::vector<TreeMember> &members) {
  TableBuilder<TreeRecord> t;
  for (size_t i = 1; i < members.size(); i++) {
    const TreeMember &m = members[i];
    TreeRecord r{};
    r.pid = m.pid;
    r.ppid = m.ppid;
    r.pgid = m.stat.pgrp;
    r.sid = m.stat.session;
    r.creator_tid = m.creator_tid;
    r.flags = m.zombie ? u32(kTreeZombie) : 0u;
    r.wait_status = m.zombie ? m.stat.exit_code : 0;
    r.exit_signal = m.stat.exit_signal;
    r.comm = t.add_string(m.stat.comm);
    t.add(r);
  }
  return t;
}

// Snapshot mode pays off from this much memory to store on (decision 134).
static constexpr u64 kSnapshotMinBytes = 8ull << 20;

std::string full_freeze_reason(const DumpOptions &opt, const std::vector<CapturedProcess> &procs,
                               const std::string &unguarded) {
  using Mode = DumpOptions::FreezeMode;
  if (opt.freeze_mode == Mode::Full) return "full (--full-freeze)";
  if (opt.caller_tid) return "full (libckpt)";
  for (const CapturedProcess &p : procs)
    if (p.capture.stopped) return "full (a stopped process)";
  // Without the guard a dumper killed mid-snapshot would leave the copy
  // in the target for its parent to see (dump_guard.h).
  if (!unguarded.empty()) return "full (no snapshot: " + unguarded + ")";
  if (opt.freeze_mode == Mode::Snapshot) return "";
  if (opt.kill_after) return "full (--kill)";
  // Below this the write takes about as long as making the copies
  // (decision 134).
  u64 bytes = 0;
  for (const CapturedProcess &p : procs)
    bytes += p.capture.memory_outlined ? estimated_stored_bytes(p.capture.maps) : stored_bytes(p.capture.memory);
  if (bytes < kSnapshotMinBytes) return "full (under 8 MiB to store)";
  return "";
}

Status arm_tree_trackers(std::vector<CapturedProcess> &procs, DumpGuard &guard, const PreArmed &prearmed,
                         const u8 (&image_id)[16], std::vector<ArmedTracker> &armed, DumpStats &stats) {
  // A pre-armed process had none before this dump, nor had a child forked
  // since with its tracker (the same inode: not one inherited from an
  // earlier dump): undone, it is left with none (dump_guard.h), as if it
  // had been armed here.
  for (CapturedProcess &p : procs) {
    bool ours = prearmed.pids.count(p.capture.pid) || (p.tracker.fd >= 0 && prearmed.inos.count(p.tracker.ino));
    guard.arming(p.capture.pid, p.tracker.fd >= 0 && !ours);
  }
  std::vector<bool> reuse(procs.size());
  for (size_t i = 0; i < procs.size(); i++) {
    reuse[i] = tracker_continues(procs[i].capture, procs[i].tracker);
    if (!reuse[i]) CKPT_TRY(close_tracker(procs[i].capture, procs[i].tracker));
  }
  for (size_t i = 0; i < procs.size(); i++) {
    auto a = reuse[i] ? continue_tracking(procs[i].capture, procs[i].tracker, image_id)
                      : arm_tracking(procs[i].capture, image_id);
    if (!a) return a.error();
    armed[i] = a.take();
    bool prearmed_here = prearmed.pids.count(procs[i].capture.pid) != 0;
    if (armed[i].ino) stats.trackers_armed++;
    if (armed[i].reused && !prearmed_here) stats.trackers_reused++;
    if (armed[i].reused && prearmed_here) stats.trackers_prearmed_kept++;
    if (!armed[i].ino && stats.tracking_note.empty()) stats.tracking_note = "not armed: " + armed[i].why;
  }
  return {};
}

}  // namespace ckpt::writer
