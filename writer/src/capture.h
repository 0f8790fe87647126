// Everything about a frozen process that goes into an image, gathered in
// one place before a byte is written: the threads, the process-wide state
// from /proc, and what only the process can tell (through injected
// syscalls).
#pragma once

#include <map>
#include <string>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

#include "fds.h"
#include "freeze.h"
#include "guard_pages.h"
#include "locks.h"
#include "mapped_memfds.h"
#include "memory.h"
#include "process_settings.h"
#include "procfs.h"
#include "stored_files.h"
#include "thread_state.h"

namespace ckpt::writer {

struct ThreadExtra {
  img::u64 altstack_sp = 0, altstack_size = 0;
  img::u32 altstack_flags = 0;
  img::u64 clear_child_tid = 0;
  img::u32 securebits = 0;                ///< prctl(PR_GET_SECUREBITS)
};

/// One seccomp filter of a thread, as PTRACE_SECCOMP_GET_FILTER gives it.
struct SeccompFilter {
  std::vector<img::u8> program;           ///< struct sock_filter[]
  img::u32 flags = 0;                     ///< SECCOMP_FILTER_FLAG_LOG or 0
};

struct ProcessCapture {
  pid_t pid = 0;
  bool stopped = false;
  ProcStat stat;
  ProcStatus status;
  std::vector<ThreadCapture> threads;     ///< leader first
  std::vector<ThreadExtra> thread_extra;  ///< parallel to threads
  std::vector<ProcStatus> thread_status;  ///< parallel to threads (SigPnd, caps, seccomp)
  /// Parallel to threads: each thread's seccomp filters, oldest first.
  std::vector<std::vector<SeccompFilter>> seccomp;
  std::vector<std::vector<img::u8>> shared_pending;
  std::vector<img::RlimitRecord> rlimits;
  std::vector<img::u64> auxv;
  std::string cmdline, comm, cwd, root, exe;
  img::u32 personality = 0;
  img::u64 brk = 0;
  bool dumpable = true;                   ///< prctl(PR_GET_DUMPABLE) == 1
  ProcessSettings settings;
  std::vector<img::SigActionRecord> sigactions;
  std::vector<img::TimerRecord> timers;
  FdTable fds;
  std::vector<img::LockRecord> locks;     ///< held through fds
  std::vector<MapEntry> maps;
  /// `maps` is smaps as read before the freeze (smaps_before.h): its
  /// VmFlags still to be confirmed by the copy, its counters refreshed.
  bool maps_from_before = false;
  img::u64 syscall_insn = 0;              ///< a `syscall` in its [vdso] that injected syscalls borrow
  std::vector<img::GuardRangeRecord> guard_ranges;
  std::vector<VmaPlan> memory;
  /// Snapshot mode: `memory` is only outlined (no runs) until the copy is
  /// planned (snapshot_plan.h); `excluded` is read while frozen for that.
  bool memory_outlined = false;
  std::vector<std::pair<img::u64, img::u64>> excluded;
  std::vector<StoredFile> stored_files;  ///< only with --store-tmpfs-files
  std::map<img::u64, MappedObjectFacts> mapped_objects;  ///< of each shared memfd or deleted-file mapping, by its start (mapped_memfds.h)
  img::u8 boot_id[16] = {};               ///< of this boot: with pid and stat.start_time, which process this is
};

/// Reads all state of the frozen process (registers, /proc, fds, injected
/// queries, the memory plan). The process stays frozen.
/// `plan_pages` false (snapshot mode): the memory is outlined only, its
/// pages planned later from the copy (snapshot_plan.h).
/// `refuse_strict`: a thread in seccomp strict mode refuses the capture
/// before anything is injected (DECISIONS 179, strict_seccomp.h).
/// `smaps_before`: the process's smaps read before the freeze, used when
/// it still holds at the instant (smaps_before.h; only with `plan_pages`
/// false: the copy confirms it later); null: smaps is read now.
img::Expected<ProcessCapture> capture_process(const FrozenProcess &frozen, bool plan_pages = true,
                                              bool refuse_strict = false,
                                              const std::vector<MapEntry> *smaps_before = nullptr);

}  // namespace ckpt::writer
