// Records of a process and its threads: ids, credentials, mm fields,
// settings, per-thread state and its syscall, signal dispositions and
// queues, timers, rlimits and seccomp filters. Part of records.h.
#pragma once

#include <ckpt/img/records_refs.h>

namespace ckpt::img {

/// CkptNote::Tasks: one per process.
struct TaskRecord {
  i32 pid, ppid, pgid, sid;
  u32 uid[4];                     ///< real, effective, saved, fs
  u32 gid[4];
  u64 cap_inheritable, cap_permitted, cap_effective, cap_bounding, cap_ambient;
  u32 umask;
  u32 personality;
  i32 nice;
  u32 flags;                      ///< TaskFlags
  i32 exit_signal;
  u32 thread_count;
  // mm fields, as prctl(PR_SET_MM_MAP) takes them
  u64 start_code, end_code, start_data, end_data;
  u64 start_brk, brk, start_stack;
  u64 arg_start, arg_end, env_start, env_end;
  StrRef comm;
  StrRef cwd;
  StrRef root;
  StrRef exe;
  BlobRef groups;                 ///< u32 supplementary gids
  BlobRef auxv;                   ///< the raw saved auxv (also in NT_AUXV)
  // Process settings (issue 17). Older writers' records end above: they
  // read as zeros, settings without kTaskSettingsCaptured, and restore
  // then leaves these as it finds them.
  i32 oom_score_adj;              ///< /proc/PID/oom_score_adj
  u32 loginuid;                   ///< /proc/PID/loginuid; 0xffffffff = unset
  u32 settings;                   ///< TaskSettings
  u32 membarrier;                 ///< membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS)
  StrRef cgroup;                  ///< /proc/PID/cgroup as read ("" when not captured)
  // Format 1.4 on (older writers' records end above: no settings).
  StrRef cgroup_settings;         ///< settings of its cgroups (img/cgroups.h), for making them again
  // Format 1.6 on (older writers' records end above: zeros, "unknown").
  // Which process this is, for `dump --parent` of a tree (FORMAT.md §12.2):
  // a pid is the same process only with the same start time in the same boot.
  u64 start_time;                 ///< /proc/PID/stat field 22 (clock ticks since boot)
  u8 boot_id[16];                 ///< /proc/sys/kernel/random/boot_id of the dump
};
static_assert(sizeof(TaskRecord) == 320);
static_assert(offsetof(TaskRecord, start_time) == 296);
static_assert(offsetof(TaskRecord, oom_score_adj) == 264);

enum TaskFlags : u32 {
  kTaskStopped = 1u << 0,          ///< job-control stopped at dump time
  kTaskSessionLeader = 1u << 1,
  kTaskGroupLeader = 1u << 2,
  kTaskDumpable = 1u << 3,
};

/// TaskRecord::settings.
enum TaskSettings : u32 {
  kTaskSettingsCaptured = 1u << 0,  ///< oom_score_adj, loginuid, membarrier and these bits are valid
  kTaskChildSubreaper = 1u << 1,    ///< prctl(PR_SET_CHILD_SUBREAPER, 1)
  kTaskThpDisabled = 1u << 2,       ///< prctl(PR_SET_THP_DISABLE, 1)
  kTaskThpExceptAdvised = 1u << 3,  ///< with PR_THP_DISABLE_EXCEPT_ADVISED (Linux 6.18)
  kTaskMlockFuture = 1u << 4,       ///< mlockall(MCL_FUTURE): new mappings are locked
  kTaskMlockFutureOnFault = 1u << 5,  ///< with MCL_ONFAULT
};

/// CkptNote::Threads: one per thread; registers are in the thread's
/// NT_PRSTATUS/NT_FPREGSET/NT_X86_XSTATE, matched by tid.
struct ThreadRecord {
  i32 tid;
  i32 pid;                  ///< owning process
  u64 fs_base, gs_base;
  u64 sigmask;              ///< blocked signals
  u64 altstack_sp, altstack_size;
  u32 altstack_flags;
  u32 flags;                ///< ThreadFlags
  u64 rseq_addr;
  u32 rseq_len, rseq_sig;
  u64 robust_list, robust_list_len;
  u64 clear_child_tid;
  // The syscall this thread was in when frozen. NT_PRSTATUS keeps the
  // registers exactly as ptrace reported them (what gdb expects); these
  // fields carry the kernel's restart decision for restore.
  i64 syscall_nr;           ///< orig_rax, or -1 when not in a syscall
  i64 syscall_result;       ///< rax as seen, e.g. -ERESTARTSYS (-512)
  u32 restart;              ///< SyscallRestart
  u32 pad0;
  u64 restart_rip;          ///< rip to resume at for a restart
  u64 restart_rax;          ///< rax to resume with for a restart
  StrRef comm;              ///< thread name
  // Privilege state (credentials are per thread in the kernel). Valid only
  // with kThreadPrivileges; an older image has zeros here and restore then
  // uses the TaskRecord's capability sets for every thread.
  u64 cap_inheritable, cap_permitted, cap_effective, cap_bounding, cap_ambient;
  u32 securebits;           ///< prctl(PR_GET_SECUREBITS)
  u32 seccomp_mode;         ///< SeccompMode
  u32 seccomp_filter_count; ///< SeccompFilterRecords of this thread
  u32 pad1;
};
static_assert(sizeof(ThreadRecord) == 200);

enum ThreadFlags : u32 {
  kThreadInSyscall = 1u << 0,
  kThreadLeader = 1u << 1,
  kThreadPrivileges = 1u << 2,   ///< the cap_*/securebits/seccomp fields are valid
  kThreadNoNewPrivs = 1u << 3,   ///< prctl(PR_SET_NO_NEW_PRIVS) was set
};

/// /proc/PID/status "Seccomp:" (SECCOMP_MODE_* of linux/seccomp.h).
enum class SeccompMode : u32 {
  Disabled = 0,
  Strict = 1,
  Filter = 2,
};

enum class SyscallRestart : u32 {
  None = 0,           ///< not in a syscall, or it completed
  Restart = 1,        ///< -ERESTARTNOINTR / -ERESTARTSYS with SA_RESTART
  Interrupt = 2,      ///< return -EINTR
  RestartBlock = 3,   ///< -ERESTART_RESTARTBLOCK: call restart_syscall
};

/// CkptNote::SigActions: one per process and signal that is not SIG_DFL.
struct SigActionRecord {
  i32 pid;
  u32 signo;
  u64 handler;              ///< SIG_DFL 0, SIG_IGN 1, or an address
  u64 flags;                ///< SA_*
  u64 restorer;
  u64 mask;
};
static_assert(sizeof(SigActionRecord) == 40);

/// CkptNote::PendingSignals: one per queued signal.
struct PendingSignalRecord {
  i32 pid;
  i32 tid;                  ///< 0 for the process-wide queue
  u32 signo;
  u32 pad0;
  u8 siginfo[128];          ///< as PTRACE_PEEKSIGINFO returns it
};
static_assert(sizeof(PendingSignalRecord) == 144);

/// CkptNote::Timers.
struct TimerRecord {
  i32 pid;
  u32 kind;                 ///< TimerKind
  i32 timer_id;             ///< POSIX timer id
  i32 clock_id;
  i32 sigev_notify;
  i32 sigev_signo;
  u64 sigev_value;
  i32 sigev_tid;
  u32 overrun;
  u64 interval_ns;
  u64 value_ns;             ///< time left until expiry; 0 = disarmed
};
static_assert(sizeof(TimerRecord) == 56);

enum class TimerKind : u32 {
  ItimerReal = 0,
  ItimerVirtual = 1,
  ItimerProf = 2,
  Posix = 3,
};

/// CkptNote::Rlimits.
struct RlimitRecord {
  i32 pid;
  u32 resource;
  u64 cur;
  u64 max;
};
static_assert(sizeof(RlimitRecord) == 24);

/// CkptNote::SeccompFilters: one per classic BPF filter of a thread in
/// SeccompMode::Filter. A thread's filters are numbered in the order they
/// were installed (position 0 is the oldest, installed first at restore).
struct SeccompFilterRecord {
  i32 pid;
  i32 tid;
  u32 position;             ///< 0 = oldest filter of the thread's chain
  u32 flags;                ///< SECCOMP_FILTER_FLAG_LOG if it was installed with it
  BlobRef program;          ///< struct sock_filter[]: 8 bytes per instruction
};
static_assert(sizeof(SeccompFilterRecord) == 32);

/// Largest classic BPF program the kernel accepts (BPF_MAXINSNS).
inline constexpr u32 kMaxSeccompInsns = 4096;
/// SECCOMP_FILTER_FLAG_LOG: the only filter flag the kernel reports back
/// (PTRACE_SECCOMP_GET_METADATA) and the only one an image may carry.
inline constexpr u32 kSeccompFilterFlagLog = 1u << 1;

}  // namespace ckpt::img
