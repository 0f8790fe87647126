// Checkpointing a live process from outside: the writer's public contract.
#pragma once

#include <atomic>
#include <span>
#include <string>
#include <sys/types.h>

#include <ckpt/img/expected.h>
#include <ckpt/img/format.h>

namespace ckpt::writer {

struct DumpOptions {
  pid_t pid = 0;
  std::string output;          ///< a path, or "-" for standard output
  bool kill_after = false;     ///< --kill: SIGKILL the process once the image is in place
  /// --sync: the image's data and its name are on disk (fsync of the file
  /// and its folder) before dump returns, and before --kill kills.
  /// Without it the image is complete and renamed into place, its data
  /// possibly still in the page cache (DECISIONS.md, Dump).
  bool sync = false;
  bool show_progress = false;  ///< a progress line on stderr for long dumps
  /// Write an image even when it holds what restore cannot bring back
  /// (kIdentityRestorable clear: for gdb only). Otherwise such a dump is
  /// refused, naming every offender, before anything is written.
  bool allow_unrestorable = false;
  /// --store-tmpfs-files: keep the bytes of files on tmpfs/ramfs that the
  /// process holds open or maps shared, so restore can recreate them.
  bool store_tmpfs_files = false;
  /// Set (e.g. from a signal handler) to abandon the dump: the target is
  /// released and no output file is left.
  const std::atomic<bool> *cancel = nullptr;
  /// --exec: write the exec form with this launcher appended (FORMAT.md §12.3).
  std::span<const img::u8> exec_launcher;
  /// libckpt's ckpt_checkpoint (self_checkpoint.h): this thread of pid is
  /// blocked in read() waiting for us; its image resumes that read with
  /// caller_resume_value as the result. 0: an ordinary dump.
  pid_t caller_tid = 0;
  img::u64 caller_resume_value = 0;
  /// --parent PREV: an incremental image on top of PREV, named in the image
  /// by its id and by this path as given (FORMAT.md §12.2).
  std::string parent;
  /// How long the target is stopped (DECISIONS.md 131): Auto takes a
  /// copy-on-write snapshot and lets the target run while memory is written
  /// when that is possible and worth it (a running target, no --kill, at
  /// least 8 MiB to store), else freezes for the whole dump. Snapshot
  /// (--short-freeze) asks for it whatever the size, Full (--full-freeze)
  /// never.
  enum class FreezeMode { Auto, Full, Snapshot } freeze_mode = FreezeMode::Auto;
  /// Dirty tracking (issue #11): arm a userfaultfd-WP tracker in every
  /// process that runs on, and with --parent use the one PREV armed.
  /// Off: every page is compared with the parent (imgtool: the
  /// CKPT_DIRTY_TRACKING=off environment variable).
  bool dirty_tracking = true;
  /// --track-dirty: leave a tracker armed in every process that runs on,
  /// for a later --parent dump. Off by default: a dump leaves the target
  /// exactly as it was (DECISIONS 155).
  bool arm_dirty_tracking = false;
  /// --inject-strict-seccomp: borrow threads in seccomp strict mode for the
  /// injected queries too; a dumper killed in that moment kills such a
  /// thread (DECISIONS 179). Off: such a dump is refused in one line.
  bool inject_strict_seccomp = false;
};

struct DumpStats {
  img::u64 image_bytes = 0;     ///< logical size of the image
  img::u64 memory_bytes = 0;    ///< bytes of memory stored
  double frozen_seconds = 0;    ///< how long the target was stopped
  double total_seconds = 0;
  img::u64 image_id = 0;        ///< the first 8 bytes of the image's id
  img::u64 parent_bytes = 0;    ///< --parent: bytes left in the parent (Parent ranges)
  bool dirty_tracked = false;   ///< --parent: dirty tracking chose some of them
  img::u64 tracked_bytes = 0;   ///< --parent: bytes dirty tracking decided without reading them
  img::u64 written_bytes = 0;   ///< of those, bytes written since the parent
  img::u64 compared_bytes = 0;  ///< --parent: bytes compared with the parent
  img::u32 trackers_armed = 0;  ///< processes left with a dirty tracker
  img::u32 trackers_reused = 0; ///< of those, trackers of an earlier dump reset and kept (DECISIONS 189)
  std::string tracking_note;    ///< why tracking was not used or armed, or ""
  /// Trackers made before the freeze (DECISIONS 260), each process
  /// stopped alone for at most `prearm_stopped_seconds` (not in
  /// frozen_seconds: the tree ran on between that stop and the freeze).
  img::u32 trackers_prearmed = 0;
  img::u32 trackers_prearmed_kept = 0;  ///< of those, found and reset by the freeze (counted in trackers_armed)
  double prearm_stopped_seconds = 0;
  /// "snapshot", or "full" followed by why in parentheses.
  std::string freeze_mode;
  /// Where smaps (VmFlags) was read: "before the freeze" (confirmed by
  /// the copy, DECISIONS 218), "in the freeze", or "in a second freeze
  /// (why)" when the copy showed the early read out of date.
  std::string smaps_note;
  /// A tree: bytes of memory still shared copy-on-write since fork, stored
  /// once (by the first process) and referenced by the others.
  img::u64 cow_shared_bytes = 0;
  /// A tree: bytes of shared memory objects (shared anonymous memory, a
  /// shared memfd...) that several processes map, stored once (by the
  /// first process mapping each page) and referenced by the others.
  img::u64 shared_memory_once_bytes = 0;
};

/// Writes an image of process options.pid. On failure nothing is left at
/// the output path and the process is as it was (running or stopped).
img::Expected<DumpStats> dump_process(const DumpOptions &options);

}  // namespace ckpt::writer
