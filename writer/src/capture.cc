#include "capture.h"

#include "dirty_tracking.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "excluded_pages.h"
#include "smaps_before.h"
#include "frozen_phases.h"
#include "unsupported_memory.h"
#include "inject.h"
#include "strict_seccomp.h"

namespace ckpt::writer {

using namespace img;

// struct kernel_sigaction as rt_sigaction(2) takes it on x86-64.
struct KernelSigaction {
  u64 handler;
  u64 flags;
  u64 restorer;
  u64 mask;
};

struct KernelItimerval {
  i64 interval_sec, interval_usec, value_sec, value_usec;
};

struct KernelItimerspec {
  i64 interval_sec, interval_nsec, value_sec, value_nsec;
};

static Status query_process(pid_t pid, Injector &inj, ProcessCapture &pc) {
  // Dispositions: only caught signals need the handler's details; ignored
  // ones are SIG_IGN by definition (flags and mask do not matter to them).
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    u64 bit = u64(1) << (sig - 1);
    if (pc.status.sig_cgt & bit) {
      KernelSigaction sa{};
      auto r = inj.call_out(SYS_rt_sigaction, {u64(sig), 0, 0, 8}, 2, &sa, sizeof sa);
      if (!r) return r.error();
      if (*r < 0) return make_error("rt_sigaction(%d) in process %d failed: %s", sig, pid, strerror(-*r));
      pc.sigactions.push_back({pid, u32(sig), sa.handler, sa.flags, sa.restorer, sa.mask});
    } else if (pc.status.sig_ign & bit) {
      pc.sigactions.push_back({pid, u32(sig), 1, 0, 0, 0});
    }
  }
  auto dumpable = inj.call(SYS_prctl, {PR_GET_DUMPABLE});
  if (!dumpable) return dumpable.error();
  pc.dumpable = *dumpable == 1;
  auto brk = inj.call(SYS_brk, {0});
  if (!brk) return brk.error();
  pc.brk = static_cast<u64>(*brk);
  auto settings = capture_process_settings(pid, inj);
  if (!settings) return settings.error();
  pc.settings = *settings;
  static const TimerKind kinds[3] = {TimerKind::ItimerReal, TimerKind::ItimerVirtual, TimerKind::ItimerProf};
  static const int signals[3] = {SIGALRM, SIGVTALRM, SIGPROF};
  for (int which = 0; which < 3; which++) {
    KernelItimerval it{};
    auto r = inj.call_out(SYS_getitimer, {u64(which), 0}, 1, &it, sizeof it);
    if (!r) return r.error();
    if (*r < 0) return make_error("getitimer(%d) in process %d failed: %s", which, pid, strerror(-*r));
    if (it.value_sec == 0 && it.value_usec == 0) {
      if (it.interval_sec == 0 && it.interval_usec == 0) continue;  // disarmed
      // Kernel quirk: a periodic ITIMER_REAL is re-armed only when its
      // SIGALRM is dequeued (dequeue_signal); until then getitimer says 0
      // left. It expired while the process was frozen and its SIGALRM
      // waits, queued (injected syscalls take no signal, DECISIONS 178):
      // the timer is due, stored as due one interval on.
      it.value_sec = it.interval_sec;
      it.value_usec = it.interval_usec;
    }
    TimerRecord t{};
    t.pid = pid;
    t.kind = static_cast<u32>(kinds[which]);
    t.sigev_signo = signals[which];
    t.interval_ns = u64(it.interval_sec) * 1000000000ull + u64(it.interval_usec) * 1000;
    t.value_ns = u64(it.value_sec) * 1000000000ull + u64(it.value_usec) * 1000;
    pc.timers.push_back(t);
  }
  auto posix = read_posix_timers(pid);
  if (!posix) return posix.error();
  for (const PosixTimerInfo &p : *posix) {
    KernelItimerspec its{};
    auto r = inj.call_out(SYS_timer_gettime, {u64(p.id), 0}, 1, &its, sizeof its);
    if (!r) return r.error();
    if (*r < 0) return make_error("timer_gettime(%d) in process %d failed: %s", p.id, pid, strerror(-*r));
    auto overrun = inj.call(SYS_timer_getoverrun, {u64(p.id)});
    TimerRecord t{};
    t.pid = pid;
    t.kind = static_cast<u32>(TimerKind::Posix);
    t.timer_id = p.id;
    t.clock_id = p.clock_id;
    t.sigev_notify = p.notify;
    t.sigev_signo = p.signo;
    t.sigev_value = p.sigev_value;
    t.sigev_tid = p.notify_tid;
    t.overrun = overrun && *overrun > 0 ? u32(*overrun) : 0;
    t.interval_ns = u64(its.interval_sec) * 1000000000ull + u64(its.interval_nsec);
    t.value_ns = u64(its.value_sec) * 1000000000ull + u64(its.value_nsec);
    pc.timers.push_back(t);
  }
  return {};
}

static Status query_thread(pid_t tid, Injector &inj, ThreadExtra &extra) {
  struct {
    u64 sp;
    i32 flags;
    u32 pad;
    u64 size;
  } ss{};
  auto r = inj.call_out(SYS_sigaltstack, {0, 0}, 1, &ss, sizeof ss);
  if (!r) return r.error();
  if (*r < 0) return make_error("sigaltstack in thread %d failed: %s", tid, strerror(-*r));
  extra.altstack_sp = ss.sp;
  extra.altstack_size = ss.size;
  extra.altstack_flags = static_cast<u32>(ss.flags);
  u64 addr = 0;
  auto t = inj.call_out(SYS_prctl, {PR_GET_TID_ADDRESS, 0}, 1, &addr, sizeof addr);
  if (!t) return t.error();
  if (*t < 0) return make_error("PR_GET_TID_ADDRESS in thread %d failed: %s", tid, strerror(-*t));
  extra.clear_child_tid = addr;
  // Securebits are per thread (part of its credentials) and /proc does not
  // show them.
  auto bits = inj.call(SYS_prctl, {PR_GET_SECUREBITS});
  if (!bits) return bits.error();
  if (*bits < 0) return make_error("PR_GET_SECUREBITS in thread %d failed: %s", tid, strerror(-*bits));
  extra.securebits = static_cast<u32>(*bits);
  return {};
}

// struct seccomp_metadata (linux/ptrace.h).
struct SeccompMetadata {
  u64 filter_off;
  u64 flags;
};

// A stopped thread's seccomp filters through ptrace, oldest first: the
// kernel's get_nth_filter counts back from the newest to index 0, the
// first one installed (the order restore installs them in again).
static Expected<std::vector<SeccompFilter>> read_seccomp_filters(pid_t tid, u32 count) {
  std::vector<SeccompFilter> out(count);
  for (u32 i = 0; i < count; i++) {
    long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, i, nullptr);
    if (n < 0 && errno == EACCES)
      return make_error("thread %d has seccomp filters; reading them needs CAP_SYS_ADMIN", tid);
    if (n <= 0 || n > long(kMaxSeccompInsns))
      return make_error("PTRACE_SECCOMP_GET_FILTER(%d, %u): %s", tid, i, n < 0 ? strerror(errno) : "bad length");
    SeccompFilter &f = out[i];
    f.program.resize(size_t(n) * 8);
    long again = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, i, f.program.data());
    if (again != n) return make_error("PTRACE_SECCOMP_GET_FILTER(%d, %u): %s", tid, i, strerror(errno));
    SeccompMetadata md{i, 0};
    if (ptrace(PTRACE_SECCOMP_GET_METADATA, tid, sizeof md, &md) < 0)
      return make_error("PTRACE_SECCOMP_GET_METADATA(%d, %u): %s", tid, i, strerror(errno));
    f.flags = static_cast<u32>(md.flags);
  }
  return out;
}

Expected<ProcessCapture> capture_process(const FrozenProcess &frozen, bool plan_pages, bool refuse_strict,
                                         const std::vector<MapEntry> *smaps_before) {
  ProcessCapture pc;
  pid_t pid = frozen.pid();
  pc.pid = pid;
  pc.stopped = frozen.was_stopped();
  std::string proc = "/proc/" + std::to_string(pid);

  CKPT_TRY_ASSIGN(pc.stat, read_stat(pid));
  CKPT_TRY_ASSIGN(pc.status, read_status(pid));
  // Which process this is across dumps (dump --parent of a tree matches
  // by pid, start time and boot).
  CKPT_TRY(read_boot_id(pc.boot_id));

  for (const FrozenThread &ft : frozen.threads()) {
    auto t = capture_thread(pid, ft.tid);
    if (!t) return t.error();
    pc.threads.push_back(t.take());
    auto ts = read_status(pid, ft.tid);
    if (!ts) return ts.error();
    if (refuse_strict) CKPT_TRY(refuse_strict_thread(pid, ft.tid, *ts));
    pc.thread_status.push_back(ts.take());
    // Filter mode: the chain's length is in the thread's status (a
    // strict-mode thread has none, PTRACE_SECCOMP_GET_FILTER says EINVAL).
    std::vector<SeccompFilter> filters;
    if (pc.thread_status.back().seccomp_mode == static_cast<u32>(SeccompMode::Filter)) {
      CKPT_TRY_ASSIGN(filters, read_seccomp_filters(ft.tid, pc.thread_status.back().seccomp_filters));
    }
    pc.seccomp.push_back(std::move(filters));
  }
  CKPT_TRY_ASSIGN(pc.shared_pending, read_shared_pending(pid));

  mark_frozen_phase("capture: threads");
  if (smaps_before && !plan_pages) {
    auto adopted = adopt_smaps_before(pid, *smaps_before, pc.status);
    if (!adopted) return adopted.error();
    if (*adopted) {
      pc.maps = std::move(**adopted);
      pc.maps_from_before = true;
    }
  }
  if (!pc.maps_from_before) CKPT_TRY_ASSIGN(pc.maps, read_maps(pid));

  bool from_parent = pc.maps_from_before && !pc.maps.empty() && pc.maps[0].flags_from_parent;
  mark_frozen_phase(from_parent            ? "capture: maps (flags from the parent)"
                    : pc.maps_from_before ? "capture: maps (smaps read before)"
                                          : "capture: smaps");
  // Injected queries run through a `syscall` instruction in [vdso]; so do
  // the snapshot's and dirty tracking's later (pc.syscall_insn).
  pc.syscall_insn = find_vdso_syscall(pid, pc.maps);
  const u64 insn = pc.syscall_insn;
  if (!insn) return make_error("process %d has no [vdso] with a syscall instruction to borrow", pid);
  pc.thread_extra.resize(pc.threads.size());
  for (size_t i = 0; i < pc.threads.size(); i++) {
    // Injected syscalls pass the thread's seccomp filters like its own (a
    // strict-mode thread would be killed by the first prctl): suspend them
    // while we borrow the thread (PTRACE_O_SUSPEND_SECCOMP, CRIU's way; it
    // needs CAP_SYS_ADMIN, without which the filters apply and a refused
    // query fails the dump with its errno). The options must repeat
    // freeze.cc's: PTRACE_SETOPTIONS replaces them all.
    pid_t tid = pc.threads[i].tid;
    constexpr long kFreezeOptions = PTRACE_O_TRACECLONE | PTRACE_O_TRACESYSGOOD;
    bool suspended = pc.thread_status[i].seccomp_mode != 0 &&
                     ptrace(PTRACE_SETOPTIONS, tid, 0, kFreezeOptions | PTRACE_O_SUSPEND_SECCOMP) == 0;
    Injector inj(tid, insn, pc.threads[i].regs);
    Status s = query_thread(tid, inj, pc.thread_extra[i]);
    if (s && i == 0) s = query_process(pid, inj, pc);
    Status r = inj.restore();
    if (suspended && ptrace(PTRACE_SETOPTIONS, tid, 0, kFreezeOptions) < 0 && r)
      r = make_error("PTRACE_SETOPTIONS(%d): %s", tid, strerror(errno));
    if (!s) return s.error();
    if (!r) return r.error();
  }

  mark_frozen_phase("capture: injected queries");
  CKPT_TRY_ASSIGN(pc.rlimits, read_rlimits(pid));
  CKPT_TRY_ASSIGN(pc.auxv, read_auxv(pid));
  CKPT_TRY_ASSIGN(pc.cmdline, read_cmdline(pid));
  auto pers = read_personality(pid);
  if (!pers) return pers.error();
  pc.personality = *pers;
  CKPT_TRY_ASSIGN(pc.comm, read_file(proc + "/comm"));
  if (!pc.comm.empty() && pc.comm.back() == '\n') pc.comm.pop_back();
  for (auto [field, name] : {std::pair{&pc.cwd, "cwd"}, {&pc.root, "root"}, {&pc.exe, "exe"}}) {
    CKPT_TRY_ASSIGN(*field, read_link(proc + "/" + name));
  }

  mark_frozen_phase("capture: /proc files");
  CKPT_TRY_ASSIGN(pc.fds, read_fds(pid, frozen.pidfd()));

  mark_frozen_phase("capture: fds");
  CKPT_TRY(finish_terminals(pid, frozen.pidfd(), pc.fds, pc.stat.tty_nr, pc.stat.tpgid, pc.stat.pgrp));
  CKPT_TRY_ASSIGN(pc.locks, read_locks(pid, pc.fds));
  CKPT_TRY_ASSIGN(pc.guard_ranges, read_guard_ranges(pid, pc.maps));

  mark_frozen_phase("capture: terminals, locks, guards");
  if (!plan_pages) {
    // Refused mappings are refused now, before any copy is made; by
    // smaps of the instant (one read before may be out of date).
    Status supported = check_memory_supported(pid, pc.maps);
    if (!supported && pc.maps_from_before) {
      CKPT_TRY_ASSIGN(pc.maps, read_maps(pid));
      pc.maps_from_before = false;
      supported = check_memory_supported(pid, pc.maps);
    }
    CKPT_TRY(supported);
    CKPT_TRY_ASSIGN(pc.excluded, read_excluded_ranges(pid, pc.maps));
    pc.memory = outline_vmas(pc.maps);
    pc.memory_outlined = true;
    mark_frozen_phase("capture: memory outlined");
    return pc;
  }
  CKPT_TRY_ASSIGN(pc.memory, plan_memory(pid, pc.maps));

  mark_frozen_phase("capture: memory plan");
  return pc;
}

}  // namespace ckpt::writer
