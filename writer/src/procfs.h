// Readers of /proc/PID/... and of the few syscalls that report another
// process's state from outside (prlimit64, get_robust_list). Everything here
// works on a process whether or not it is stopped; nothing here uses ptrace.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

namespace ckpt::writer {

using img::Expected;
using img::i64;
using img::u32;
using img::u64;

/// One line of /proc/PID/smaps with its VmFlags.
struct MapEntry {
  u64 start = 0, end = 0;
  u32 prot = 0;              ///< PROT_READ|PROT_WRITE|PROT_EXEC
  bool shared = false;       ///< 's' in the perms column
  u64 offset = 0;
  u32 dev_major = 0, dev_minor = 0;
  u64 ino = 0;
  std::string path;          ///< as printed: "/usr/lib/...", "[heap]", "" , "/x (deleted)"
  std::vector<std::string> vmflags;  ///< two-letter VmFlags codes: "rd", "wr", "gd", "dd", "io", "hg", ...
  u64 anonymous_kb = 0;      ///< smaps "Anonymous:"
  u64 swap_kb = 0;           ///< smaps "Swap:"
  u64 rss_kb = 0;            ///< smaps "Rss:"
  u64 kernel_page_kb = 0;    ///< smaps "KernelPageSize:" (2048 for 2 MiB hugetlb pages)
  /// VmFlags and counters are a guess from the parent image's records
  /// (smaps_from_parent.h), not smaps: confirm_smaps checks them.
  bool flags_from_parent = false;
  bool has_flag(const char *code) const;
};

/// Parses /proc/PID/smaps (one pass; paths with spaces kept whole).
/// `brief`: /proc/PID/maps instead (no VmFlags, no sizes; it costs
/// nothing per page, smaps walks every page table).
Expected<std::vector<MapEntry>> read_maps(pid_t pid, bool brief = false);

/// Fields of /proc/PID/stat or /proc/PID/task/TID/stat (see proc(5)).
struct ProcStat {
  std::string comm;          ///< between the outer parentheses; may hold spaces and ')'
  char state = '?';
  pid_t ppid = 0, pgrp = 0, session = 0;
  int tty_nr = 0;
  pid_t tpgid = 0;           ///< the controlling terminal's foreground group (-1: none)
  u64 flags = 0;
  u64 utime = 0, stime = 0;  ///< clock ticks
  i64 cutime = 0, cstime = 0;
  i64 nice = 0;
  i64 num_threads = 0;
  u64 start_time = 0;        ///< field 22: clock ticks since boot
  int exit_signal = 0;
  int exit_code = 0;         ///< field 52: a zombie's status as waitpid() reports it
  u64 start_code = 0, end_code = 0, start_stack = 0;
  u64 start_data = 0, end_data = 0, start_brk = 0;
  u64 arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
};
Expected<ProcStat> read_stat(pid_t pid, pid_t tid = 0);

/// Fields of /proc/PID/status (or a thread's).
struct ProcStatus {
  u32 uid[4] = {}, gid[4] = {};   ///< real, effective, saved, fs
  std::vector<u32> groups;
  u64 cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0, cap_amb = 0;
  u32 umask = 0;
  pid_t tgid = 0, tracer_pid = 0;
  u64 sig_pnd = 0, shd_pnd = 0, sig_blk = 0, sig_ign = 0, sig_cgt = 0;
  u32 no_new_privs = 0;            ///< "NoNewPrivs"
  u32 seccomp_mode = 0;            ///< "Seccomp": SECCOMP_MODE_*
  u32 seccomp_filters = 0;         ///< "Seccomp_filters": the thread's chain length
  std::optional<u64> vm_lck_kb;    ///< "VmLck" in kB (mm->locked_vm); absent without an mm
  u32 fd_table_size = 0;           ///< "FDSize": slots in the fd table (it grows, never shrinks); 0 if absent
};
Expected<ProcStatus> read_status(pid_t pid, pid_t tid = 0);

/// Thread ids from /proc/PID/task, ascending.
Expected<std::vector<pid_t>> list_threads(pid_t pid);
/// Children of every thread (/proc/PID/task/*/children): thread by thread,
/// each thread's in the order it forked (or adopted) them, as the kernel
/// lists them; not by pid.
Expected<std::vector<pid_t>> list_children(pid_t pid);
/// The same, each child with the thread that forked it.
struct ChildOf {
  pid_t child = 0;
  pid_t creator_tid = 0;
};
Expected<std::vector<ChildOf>> list_children_by_thread(pid_t pid);

/// Whole contents of a /proc file (or any file); binary safe.
Expected<std::string> read_file(const std::string &path);
/// readlink(2) as a string.
Expected<std::string> read_link(const std::string &path);

/// "/proc/PID/map_files/START-END": opens (or stats) the very file mapped
/// at m, even if its path was replaced or unlinked.
std::string map_files_path(pid_t pid, const MapEntry &m);

/// /proc/PID/mem opened read-only (O_CLOEXEC), or -1 with errno.
int open_mem(pid_t pid);

/// Reads [at, at + len) through `mem`, an fd of /proc/PID/mem (FOLL_GET:
/// no copy-on-write page is unshared, unlike process_vm_readv's pin).
/// Returns the bytes read, len unless it failed there; errno then says
/// why (0: past the end of memory).
size_t read_mem_at(int mem, u64 at, img::u8 *into, size_t len);

/// /proc/PID/auxv as (type, value) words, AT_NULL included.
Expected<std::vector<u64>> read_auxv(pid_t pid);
/// /proc/PID/cmdline, NUL separators kept.
Expected<std::string> read_cmdline(pid_t pid);
/// /proc/PID/personality (hex).
Expected<u32> read_personality(pid_t pid);

/// Every resource limit via prlimit64(pid, r, NULL, &old), r = 0..RLIM_NLIMITS-1.
Expected<std::vector<img::RlimitRecord>> read_rlimits(pid_t pid);

/// One POSIX timer from /proc/PID/timers (values need timer_gettime in the
/// target, done by the caller through injection).
struct PosixTimerInfo {
  int id = 0;
  int signo = 0;
  u64 sigev_value = 0;       ///< "signal: N/PTR": the PTR
  int notify = 0;            ///< SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEV_NONE...
  pid_t notify_tid = 0;      ///< for "thread/TID" or "signal/TID"
  int clock_id = 0;
};
Expected<std::vector<PosixTimerInfo>> read_posix_timers(pid_t pid);

/// get_robust_list(tid) from outside.
struct RobustList {
  u64 head = 0, len = 0;
};
Expected<RobustList> read_robust_list(pid_t tid);

}  // namespace ckpt::writer
