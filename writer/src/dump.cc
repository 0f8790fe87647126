// dump_process: freeze the tree, capture, plan, check, stream, release. The
// order matters for the targets' sake: what restore could not bring back is
// refused before the output exists; the tree is released as soon as its
// memory has been read, before the image is renamed (and synced, with
// --sync), and killed (--kill) only after the image is in place.
#include <ckpt/writer/dump.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <cstdio>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/img/fault_point.h>
#include <ckpt/img/restorable.h>

#include "build_notes.h"
#include "capture.h"
#include "cow_sharing.h"
#include "dirty_tracking.h"
#include "dirty_tracking_prearm.h"
#include "freeze_tree.h"
#include "inject_return_frame.h"
#include "frozen_phases.h"
#include "mapped_memfds.h"
#include "memory.h"
#include "output.h"
#include "parent_compare.h"
#include "procfs.h"
#include "self_checkpoint.h"
#include "snapshot.h"
#include "smaps_before.h"
#include "snapshot_plan.h"
#include "strict_seccomp.h"
#include "dump_guard.h"
#include "dump_parts.h"
#include "sysv_ipc.h"
#include "tree_ids.h"
#include "unix_peers.h"
#include "fd_kinds/tcp_repair.h"

namespace ckpt::writer {

using namespace img;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

namespace {

// A relative --parent names PREV from FILE's directory (CONTRACT.md), which
// surprises when PREV was typed as a path from here: when the resolved path
// is missing but the one as given exists from the current directory, the
// error says so, and what --parent would name it (DECISIONS 271). Appended
// to the one line as a parenthesis; "" when it does not apply.
std::string relative_parent_hint(const DumpOptions &opt, const std::string &where) {
  const std::string &given = opt.parent;
  if (given.empty() || given[0] == '/' || where == given) return "";
  struct stat st;
  if (stat(where.c_str(), &st) == 0 || errno != ENOENT) return "";
  if (stat(given.c_str(), &st) != 0) return "";
  size_t slash = opt.output.rfind('/');
  std::string dir = opt.output.substr(0, slash + 1);  // "inc/"; never empty here (where != given)
  // From FILE's directory: the part after it when PREV lies below it, else
  // PREV's absolute path.
  std::string from_file;
  if (given.compare(0, dir.size(), dir) == 0) {
    from_file = given.substr(dir.size());
  } else {
    char *abs = realpath(given.c_str(), nullptr);
    if (!abs) return "";
    from_file = abs;
    free(abs);
  }
  return " (a relative --parent is taken from FILE's directory, " + dir + "; the " + given +
         " found from here is --parent " + from_file + ")";
}

// FILE replaces its path by rename once written: were it a link of the
// --parent chain (the parent itself, or an image the parent builds on),
// the new image would destroy a link its own chain needs, and both it and
// every later increment would fail to restore (DECISIONS 270). Compared
// by st_dev/st_ino, so that another spelling of the same path, a hard
// link or a symlink to it counts too. Refused before anything is stopped.
Status refuse_output_in_chain(const std::string &output, const Chain &chain) {
  struct stat out;
  if (output == "-") return {};  // streamed: no file is replaced
  if (stat(output.c_str(), &out) != 0) return {};  // not there yet: nothing to overwrite
  for (size_t i = 0; i < chain.size(); i++) {
    struct stat link;
    if (stat(chain[i]->path.c_str(), &link) != 0) continue;
    if (link.st_dev != out.st_dev || link.st_ino != out.st_ino) continue;
    return make_error("-o %s is %s %s of the --parent chain: writing it would destroy an image the new one needs "
                      "(write the increment to another file)",
                      output.c_str(), i == 0 ? "the parent image" : "the image", chain[i]->path.c_str());
  }
  return {};
}

// A first attempt that read smaps before the freeze and found, once the
// copy existed, that it was out of date (smaps_before.h): why, and how long
// that attempt kept the tree frozen.
struct StaleSmaps {
  std::string why;
  double frozen_seconds = 0;
};

// One dump; `smaps_early`: read smaps before the freeze where it can
// (smaps_before.h), filling `stale` when the copy shows it out of date.
Expected<DumpStats> dump_attempt(const DumpOptions &opt, bool smaps_early, StaleSmaps *stale) {
  DumpStats stats;
  auto start = Clock::now();
  if (opt.caller_tid) CKPT_TRY(await_caller_in_read(opt.pid, opt.caller_tid));
  // Before anything is touched; checked again per process once frozen
  // (a thread may enter strict mode in between).
  if (!opt.inject_strict_seccomp) CKPT_TRY(refuse_strict_seccomp(opt.pid, true));
  // --parent: the chain is opened and checked before the freeze (a
  // missing, replaced or structurally damaged parent refuses the dump
  // without stopping anything). Its memory checksums are not read here:
  // the compare reads those bytes anyway, a damaged page only compares
  // unequal (and is stored), and restore, verify and merge check them.
  // The image will name PREV by the path as given, resolved against its
  // own directory, so that is the file compared against.
  Chain parent;
  if (!opt.parent.empty()) {
    if (!opt.exec_launcher.empty())
      return make_error("--parent: an incremental image is core-form only (merge it, then convert)");
    std::string where = parent_path_of(opt.output, opt.parent);
    auto chain = open_chain(where, false);
    if (!chain) return Error(chain.error().context("--parent " + where).message() + relative_parent_hint(opt, where));
    parent = chain.take();
    CKPT_TRY(refuse_output_in_chain(opt.output, parent));
  }
  // Dirty tracking from this dump on and snapshot mode change the tree
  // for a while; the guard undoes that on every failure, imgtool killed
  // included, before anyone sees imgtool gone (dump_guard.h). Declared
  // before the freeze: it acts once the tree is released.
  using Mode = DumpOptions::FreezeMode;
  bool arm = opt.dirty_tracking && opt.arm_dirty_tracking && !opt.kill_after && !opt.caller_tid;
  bool may_snapshot = !opt.caller_tid && (opt.freeze_mode == Mode::Snapshot ||
                                          (opt.freeze_mode == Mode::Auto && !opt.kill_after));
  std::unique_ptr<DumpGuard> guard;
  std::string unguarded;
  if (arm || may_snapshot) {
    auto g = DumpGuard::start();
    if (g) guard = g.take();
    else unguarded = g.error().message();
  }
  if (arm && !guard) {
    arm = false;
    stats.tracking_note = "not armed: " + unguarded;
  }
  // Work the freeze would do that its result does not depend on is done
  // before it (checked at its use inside).
  prime_sigreturn_sequences(opt.pid);
  // Snapshot mode plans the pages after the release, from the copies
  // (snapshot_plan.h), --parent's page selection too (DECISIONS 229).
  bool defer_plan = guard && may_snapshot;
  std::map<pid_t, std::vector<MapEntry>> smaps_before;
  if (defer_plan && smaps_early) smaps_before = read_smaps_before_freeze(opt.pid, parent);
  PreparedCgroup snapshot_cgroup;
  if (guard && may_snapshot) snapshot_cgroup.make([&](const std::string &path) { guard->snapshot_cgroup(path); });
  CKPT_TRY(fault_point("dump-primed"));
  // A first dump's trackers are made before the freeze, each process
  // stopped alone and briefly; the freeze then only resets them
  // (dirty_tracking_prearm.h, DECISIONS 260).
  PreArmed prearmed;
  if (arm) {
    CKPT_TRY_ASSIGN(prearmed, prearm_trackers(opt.pid, *guard, smaps_before));
    stats.trackers_prearmed = u32(prearmed.pids.size());
    stats.prearm_stopped_seconds = prearmed.stopped_seconds;
  }
  CKPT_TRY(fault_point("dump-prearmed"));
  // Frozen time counts from the first stop request: an upper bound of
  // how long any thread of the tree was stopped.
  auto frozen_at = Clock::now();
  FrozenPhases phases;
  phases.open();
  FrozenPhases::set_active(&phases);
  struct Deactivate {
    ~Deactivate() { FrozenPhases::set_active(nullptr); }
  } deactivate;
  auto frozen = FrozenTree::freeze(opt.pid, opt.cancel);
  if (!frozen) return frozen.error();
  for (const TreeMember &m : frozen->members()) phases.add_process(m.pid);
  phases.mark("freeze: seize and interrupt");
  CKPT_TRY(fault_point("dump-seized"));
  const std::vector<TreeMember> &members = frozen->members();
  // Established TCP connections are read in repair mode; they leave it
  // before the tree runs again (declared after `frozen`, so also on every
  // error return), or stay in it, locked, for --kill (tcp_repair.h).
  TcpRepairHold tcp_repair(opt.kill_after);

  std::vector<CapturedProcess> procs;  // live members, root first
  for (const TreeMember &m : members) {
    if (m.zombie) continue;
    auto before = smaps_before.find(m.pid);
    auto pc = capture_process(*m.frozen, !defer_plan, !opt.inject_strict_seccomp,
                              before == smaps_before.end() ? nullptr : &before->second);
    if (!pc) return m.pid == opt.pid ? pc.error() : pc.error().context("process " + std::to_string(m.pid));
    if (opt.caller_tid && m.pid == opt.pid)
      CKPT_TRY(resume_caller_with(*pc, opt.caller_tid, opt.caller_resume_value));
    TrackerFd tracker = take_tracker_fd(m.pid, pc->fds);
    if (opt.store_tmpfs_files) {
      auto stored = read_stored_files(m.pid, pc->fds, pc->maps);
      if (!stored) return stored.error();
      pc->stored_files = stored.take();
    }
    auto objects = read_mapped_objects(m.pid, pc->maps);
    if (!objects) return objects.error();
    pc->mapped_objects = objects.take();
    procs.push_back(CapturedProcess{pc.take(), {}, {}, tracker, false, {}});
  }
  {
    std::vector<TreeFdTable> tables;
    size_t i = 0;
    for (const TreeMember &m : members)
      if (!m.zombie) tables.push_back({m.pid, m.frozen->pidfd(), &procs[i++].capture.fds});
    CKPT_TRY(join_split_pty_pairs(tables));
  }
  phases.mark("capture: ptys");
  // --parent: what each process wrote since PREV is read here, in the
  // window (its tracker is reset before the release); which pages become
  // Parent is chosen once the pages are planned, from the copy after the
  // release in snapshot mode (select_parents below).
  std::vector<ProcessChain> chains(procs.size());  // empty: new since PREV
  std::vector<WrittenPages> written(procs.size());
  if (!parent.empty()) {
    if (parent[0]->view.tasks.records.empty() || parent[0]->view.tasks.records[0].pid != opt.pid)
      return make_error("--parent %s is not a checkpoint of process %d", opt.parent.c_str(), opt.pid);
    // Each process against its own core in PREV (FORMAT.md §12.2); one
    // new since PREV stores everything.
    for (size_t i = 0; i < procs.size(); i++) {
      CapturedProcess &p = procs[i];
      const ChainLinkImage *prev = matching_core(parent, p.capture, i == 0);
      if (!prev) continue;
      auto chain = process_chain(parent, p.capture.pid);
      if (!chain) return chain.error().context("--parent " + opt.parent);
      chains[i] = chain.take();
      p.incremental = true;
      // Dirty tracking since PREV where it holds (dirty_tracking.h); the
      // rest is compared. "uw" in smaps read before the freeze may be out
      // of date, but what counts is the kernel's word at this instant:
      // PAGEMAP_SCAN's PM_SCAN_CHECK_WPASYNC refuses (and the range is
      // compared) a mapping not registered for async write-protection.
      std::string why;
      if (opt.dirty_tracking) {
        // A tracker pre-armed by this dump saw nothing of before it: as none.
        bool fresh = prearmed.pids.count(p.capture.pid) != 0;
        auto w = read_written_pages(p.capture, fresh ? TrackerFd{} : p.tracker, prev->image,
                                    prev->view.identity.image_id, why);
        if (!w) return i == 0 ? w.error() : w.error().context("process " + std::to_string(p.capture.pid));
        written[i] = w.take();
      } else {
        why = "dirty tracking is off";
      }
      if (stats.tracking_note.empty() && !why.empty())
        stats.tracking_note = i == 0 ? why : "process " + std::to_string(p.capture.pid) + ": " + why;
    }
  }
  phases.mark("parent: written pages");
  std::vector<ProcessCapture *> all;
  for (CapturedProcess &p : procs) all.push_back(&p.capture);
  auto ipc = capture_sysv_ipc(std::vector<const ProcessCapture *>(all.begin(), all.end()));
  if (!ipc) return ipc.error();
  if (procs.size() > 1) CKPT_TRY(assign_tree_ids(all));
  // Socket peers are in the image only if some process of it holds them.
  mark_unix_peers(all);
  ImageIdentity ident = new_identity("imgtool dump " CKPT_VERSION);
  std::memcpy(&stats.image_id, ident.image_id, sizeof stats.image_id);
  phases.mark("sysv, tree ids");

  // Dirty tracking from this dump on, in every process that runs on
  // (dirty_tracking.h). A --kill dump and libckpt's in-process one arm
  // nothing. Journalled first: a failure from here on closes the new
  // trackers in the processes that had none (dump_guard.h).
  std::vector<ArmedTracker> armed(procs.size());
  bool trackers_done = false;
  auto arm_trackers = [&]() -> Status {
    trackers_done = true;
    if (!arm) return {};
    CKPT_TRY(arm_tree_trackers(procs, *guard, prearmed, ident.image_id, armed, stats));
    phases.mark("dirty tracker armed");
    return {};
  };

  // Snapshot mode: from the release on, memory is read from frozen copies
  // and the tree runs on (snapshot.h).
  std::unique_ptr<Snapshot> snap;
  stats.freeze_mode = full_freeze_reason(opt, procs, guard ? std::string() : unguarded);
  auto take_snapshot = [&]() -> Status {
    std::vector<const ProcessCapture *> all_captured;
    for (const CapturedProcess &p : procs) all_captured.push_back(&p.capture);
    auto taken = Snapshot::take(all_captured, *guard, &snapshot_cgroup);
    if (!taken) {
      stats.freeze_mode = "full (no snapshot: " + taken.error().message() + ")";
      return {};
    }
    snap = taken.take();
    // Sockets held in TCP repair mode leave it before the tree runs on.
    tcp_repair.release();
    phases.mark("snapshot taken");
    CKPT_TRY(frozen->release());
    stats.frozen_seconds = seconds_since(frozen_at);
    phases.mark("release");
    phases.print();
    stats.freeze_mode = "snapshot";
    return {};
  };
  if (defer_plan && stats.freeze_mode.empty()) {
    // The pages are planned from the copies, after the release (DECISIONS
    // 175): the trackers are armed and the copies made first, and the
    // notes built and checked once the tree runs again. A refusal then
    // still writes nothing, and the guard undoes the trackers and copies.
    CKPT_TRY(arm_trackers());
    CKPT_TRY(take_snapshot());
  }
  for (size_t i = 0; i < procs.size(); i++) {
    ProcessCapture &pc = procs[i].capture;
    if (!pc.memory_outlined) continue;
    // smaps read before the freeze holds only if the copy (or the process,
    // still frozen) confirms it; otherwise this attempt is undone like any
    // failed dump and the next reads smaps inside the window.
    if (pc.maps_from_before) {
      auto later = read_maps(snap ? snap->of(i).copy : pc.pid);
      if (!later) return later.error();
      std::string why;
      if (!confirm_smaps(pc.maps, *later, snap != nullptr, why)) {
        if (stale) {
          stale->why = "process " + std::to_string(pc.pid) + ": " + why;
          stale->frozen_seconds = snap ? stats.frozen_seconds : seconds_since(frozen_at);
        }
        return make_error("process %d: smaps read before the freeze is out of date: %s", pc.pid, why.c_str());
      }
    }
    // From the copy; without one (snapshot mode not possible after all),
    // from the process, still frozen.
    const WrittenPages *tracking = written[i].tracked.empty() ? nullptr : &written[i];
    auto plan = snap ? plan_from_copy(snap->of(i).copy, pc.maps, snap->of(i).early_plan, pc.excluded, tracking)
                     : plan_memory(pc.pid, pc.maps, &pc.excluded);
    if (!plan) return i == 0 ? plan.error() : plan.error().context("process " + std::to_string(pc.pid));
    if (snap) CKPT_TRY(check_stack_witnesses(pc.pid, snap->of(i).copy, snap->of(i).witnesses, *plan, pc.excluded));
    pc.memory = plan.take();
    pc.memory_outlined = false;
  }
  if (!snap) phases.mark("memory planned");
  if (!parent.empty()) {
    for (size_t i = 0; i < procs.size(); i++) {
      CapturedProcess &p = procs[i];
      if (!p.incremental) continue;
      auto sel = select_parent_pages(snap ? snap->of(i).copy : p.capture.pid, p.capture.memory, chains[i],
                                     written[i].tracked.empty() ? nullptr : &written[i],
                                     snap ? &snap->of(i).early : nullptr);
      if (!sel) return sel.error();
      p.selection = sel.take();
      stats.parent_bytes += p.selection.parent_bytes;
      stats.tracked_bytes += p.selection.tracked_bytes;
      stats.written_bytes += p.selection.written_bytes;
      stats.compared_bytes += p.selection.compared_bytes;
    }
    stats.dirty_tracked = stats.tracked_bytes > 0;
    if (!snap) phases.mark("parent pages");
  }

  // Refuse what restore would refuse before anything is written or killed
  // (the same support list restore, verify and info use), in every process
  // of the tree: returning here lets the tree go exactly as it was, and
  // no file was ever created.
  std::vector<Unsupported> lacking;
  std::vector<std::vector<Note>> encoded;
  if (procs.size() > 1) {
    // Memory still shared copy-on-write since fork, and shared memory
    // objects several processes map, are stored once, by the first
    // process holding them (cow_sharing.h).
    std::vector<SharingMember> sharing;
    for (CapturedProcess &p : procs) sharing.push_back({p.capture.pid, &p.capture.memory});
    CowSharing shared = share_cow_pages(sharing);
    stats.cow_shared_bytes = shared.bytes;
    stats.shared_memory_once_bytes = shared.shared_object_bytes;
  }
  for (CapturedProcess &p : procs) {
    p.layout = layout_segments(p.capture.memory);
    p.notes = build_notes(p.capture, p.layout, ident);
    add_sysv_ipc_notes(*ipc, p.capture, &p == &procs[0], p.notes);  // the objects' state: once, in the root
    // The root names PREV always (the chain goes through it); a further
    // process only if its pages do (a new one is a full core).
    if (!parent.empty() && (&p == &procs[0] || p.incremental)) {
      ParentRecord link{};
      std::memcpy(link.image_id, parent[0]->view.identity.image_id, sizeof link.image_id);
      link.path_hint = p.notes.parent.add_string(opt.parent);
      p.notes.parent.add(link);
      p.notes.identity.records[0].flags |= kIdentityIncremental;
    }
    auto captured = view_of_notes(p.notes);
    if (!captured) return captured.error().context("process " + std::to_string(p.capture.pid));
    auto list = unsupported_state(captured->view);
    lacking.insert(lacking.end(), list.begin(), list.end());
    encoded.push_back(std::move(captured->notes));
  }
  if (!snap) phases.mark("cow sharing, notes");
  std::string lacks = unsupported_message(lacking);
  bool tree = members.size() > 1;
  if (!lacks.empty()) {
    if (!opt.allow_unrestorable)
      return make_error("%s (nothing written; --allow-unrestorable writes an image for debugging only)",
                        lacks.c_str());
    for (CapturedProcess &p : procs) p.notes.identity.records[0].flags &= ~u32(kIdentityRestorable);
  }
  // Otherwise armed only now that nothing will refuse the dump.
  if (!trackers_done) CKPT_TRY(arm_trackers());
  std::vector<bool> tracking_added(procs.size(), false);
  for (size_t i = 0; i < procs.size(); i++) {
    CapturedProcess &p = procs[i];
    bool selected = p.incremental;
    if (!arm && !selected) continue;
    const ParentSelection &sel = p.selection;  // zeros unless selected
    u32 flags = selected && sel.tracked_bytes ? u32(kTrackingUsed) : 0u;
    add_tracking_record(p.notes.dirty_tracking, p.capture, armed[i], flags, sel.tracked_bytes, sel.written_bytes,
                        sel.compared_bytes);
    tracking_added[i] = true;
  }
  if (tree) {
    procs[0].notes.identity.records[0].process_count = static_cast<u32>(members.size());
    procs[0].notes.tree = tree_table(members);
  }
  // The notes just checked are the notes written (encoded once); only the
  // root of a tree (its Tree note), a process given a DirtyTracking record
  // or a debug image changed since.
  for (size_t i = 0; i < procs.size(); i++)
    if (!lacks.empty() || (tree && i == 0) || tracking_added[i]) encoded[i] = procs[i].notes.encode();
  // Snapshot mode with the pages planned while frozen (--parent).
  if (!snap && stats.freeze_mode.empty()) CKPT_TRY(take_snapshot());

  auto out = ImageOutput::open(opt.output);
  if (!out) return out.error();
  ImageWriter::Options wopt;
  // --sync: start writeback while the dump goes on, so that the final
  // fsync finds little left to write.
  wopt.early_writeback = opt.sync;
  wopt.cancel = opt.cancel;
  wopt.exec_launcher = opt.exec_launcher;
  // The exec form is a program its owner runs as ./FILE.
  if (!opt.exec_launcher.empty() && opt.output != "-" && fchmod(out->fd(), 0700) < 0)
    return make_error("chmod %s: %s", opt.output.c_str(), strerror(errno));
  std::vector<EmbeddedCorePlan> embedded;
  for (size_t i = 1; i < procs.size(); i++) embedded.push_back({std::move(encoded[i]), procs[i].layout.segments});
  auto writer = tree ? ImageWriter::create_tree(std::move(encoded[0]), procs[0].layout.segments, std::move(embedded), wopt)
                     : ImageWriter::create(std::move(encoded[0]), procs[0].layout.segments, wopt);
  if (!writer) return writer.error();
  for (const CapturedProcess &p : procs) stats.memory_bytes += stored_bytes(p.capture.memory);
  stats.image_bytes = writer->layout().total_size;

  auto cancelled = [&] { return opt.cancel && opt.cancel->load(); };
  // Every return below releases the tree (FrozenTree's destructor) and
  // removes the temporary file (ImageOutput's).
  auto interrupted = [&] {
    return make_error("interrupted; no image was written and process %d was let go as it was", opt.pid);
  };
  auto last_report = Clock::now();
  bool reported = false;
  u64 done_before = 0;  // bytes of the processes already written
  auto progress = [&](u64 done) {
    // The fault test's point: imgtool killed while the copies are read.
    if (snap && (done_before + done) * 2 >= stats.memory_bytes) (void)fault_point("snapshot-midway");  // kill form only
    if (!opt.show_progress) return;
    double elapsed = seconds_since(start);
    if (elapsed < 1.0 || seconds_since(last_report) < 0.2) return;
    last_report = Clock::now();
    reported = true;
    std::fprintf(stderr, "\rimgtool dump: %llu of %llu MiB (%.0f MiB/s)   ",
                 (unsigned long long)((done_before + done) >> 20), (unsigned long long)(stats.memory_bytes >> 20),
                 ((done_before + done) >> 20) / elapsed);
  };

  if (cancelled()) return interrupted();
  CKPT_TRY(writer->begin(out->fd()));
  for (size_t i = 0; i < procs.size(); i++) {
    ImageWriter *w = &*writer;
    if (i > 0) {
      auto part = writer->begin_embedded(i - 1);
      if (!part) return part.error();
      w = *part;
    }
    const ProcessCapture &pc = procs[i].capture;
    Status s = write_memory(snap ? snap->of(i).copy : pc.pid, pc.memory, *w, [&](u64 done) { progress(done); },
                            opt.cancel, snap ? &snap->of(i).early : nullptr);
    if (cancelled()) {
      if (reported) std::fprintf(stderr, "\n");
      return interrupted();
    }
    if (!s) return i == 0 ? s.error() : s.error().context("process " + std::to_string(pc.pid));
    if (i > 0) CKPT_TRY(w->finish());
    done_before += stored_bytes(pc.memory);
  }
  if (reported) std::fprintf(stderr, "\n");
  CKPT_TRY(writer->finish());

  if (snap) {
    auto refrozen = snap->finish();  // the copies reaped in their targets
    if (!refrozen) return refrozen.error();
    stats.frozen_seconds += *refrozen;
  } else if (!opt.kill_after) {
    tcp_repair.release();
    CKPT_TRY(frozen->release());
    stats.frozen_seconds = seconds_since(frozen_at);
    phases.mark("memory written, release");
    phases.print();
  }
  if (cancelled()) return interrupted();
  stats.smaps_note = "in the freeze";
  if (std::all_of(procs.begin(), procs.end(), [](const CapturedProcess &p) { return p.capture.maps_from_before; }))
    stats.smaps_note = "before the freeze";
  CKPT_TRY(out->commit(opt.sync));
  if (guard) guard->commit();  // the trackers stay with the image that names them
  if (opt.kill_after) {
    if (!snap) stats.frozen_seconds = seconds_since(frozen_at);  // not the wait for the kill
    tcp_repair.keep_for_kill();
    CKPT_TRY(frozen->kill());
  }
  stats.total_seconds = seconds_since(start);
  return stats;
}

}  // namespace

// Kernel quirk: a kernel thread (kthreadd, kworkers: PF_KTHREAD in
// /proc/PID/stat's flags, include/linux/sched.h) cannot be ptraced, and
// PTRACE_SEIZE's EPERM would read as a permission problem; it has no user
// memory or program state at all (DECISIONS 272).
constexpr u64 kPfKthread = 0x00200000;

Expected<DumpStats> dump_process(const DumpOptions &opt) {
  if (auto st = read_stat(opt.pid); st && (st->flags & kPfKthread))
    return make_error("process %d (%s) is a kernel thread: it has no program, memory or state to checkpoint",
                      opt.pid, st->comm.c_str());
  StaleSmaps stale;
  auto first = dump_attempt(opt, true, &stale);
  if (first || stale.why.empty()) return first;
  // The program changed a mapping's VmFlags between the early smaps read
  // and the freeze (rare: madvise or mlock of a whole mapping in those
  // milliseconds). The first attempt left the tree as it was; this one
  // reads smaps inside the window, as every dump did before.
  auto again = dump_attempt(opt, false, nullptr);
  if (!again) return again;
  again->frozen_seconds += stale.frozen_seconds;
  again->smaps_note = "in a second freeze (" + stale.why + ")";
  return again;
}

}  // namespace ckpt::writer
