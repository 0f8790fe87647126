#include "handover.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <elf.h>
#include <string>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <ckpt/img/fault_point.h>

#include "self_maps.h"

namespace ckpt::reader {

using namespace img;

namespace {

// Not in glibc 2.36's <sys/ptrace.h> under these names on every build.
constexpr int kSuspendSeccomp = 1 << 21;  // PTRACE_O_SUSPEND_SECCOMP
constexpr long kMaxStops = 100000;        // a runaway loop, not a slow thread

bool in_region(const Handover &h, u64 ip) { return ip >= h.region_start && ip < h.region_end; }

Status wait_stop(pid_t tid, int *status) {
  for (;;) {
    pid_t r = waitpid(tid, status, __WALL);
    if (r == tid) break;
    if (r < 0 && errno == EINTR) continue;
    return make_error("waitpid(%d): %s", tid, strerror(errno));
  }
  if (WIFEXITED(*status) || WIFSIGNALED(*status)) return make_error("thread %d died during the handover", tid);
  return {};
}

// A stop's signal, if it is one to send again after the detach. Syscall
// stops (SIGTRAP|0x80) and event stops (status >> 16: the interrupt's
// PTRACE_EVENT_STOP) carry on; a signal-delivery stop is suppressed by the
// next resume, so its signal is held back here. Signals other than ours
// cannot arrive meanwhile (the restorer blocks all): this is SIGSTOP from
// outside, which no mask blocks.
void keep_signal(int status, std::vector<int> &deferred) {
  int sig = WSTOPSIG(status);
  if ((status >> 16) == 0 && sig != (SIGTRAP | 0x80) && sig != SIGTRAP) deferred.push_back(sig);
}

// At its interrupt stop, a parked thread is inside its FUTEX_WAIT on
// threads_go, which the interrupt ended with -ERESTARTSYS. Kernel quirk:
// the restart is decided only after the stop (arch_do_signal_or_restart,
// once get_signal() returns with no signal: rip -= 2, rax = orig_rax, when
// orig_rax names a syscall), so resumed as is the thread runs the futex
// again: two more syscall stops (entry, exit with EAGAIN), ~25 us each on
// this VM, for a call that only returns to the loop that reads threads_go.
// orig_rax = -1 (what a tracer sets to say "not in a syscall") makes the
// kernel skip the restart: the thread returns with -EINTR, which its loop
// takes as a wake-up, and reads threads_go (set before it runs again).
// Anything else (a thread caught between its futex calls) is left as is.
Status skip_futex_restart(pid_t tid) {
  constexpr long kErestartsys = 512;  // include/linux/errno.h, not in uapi
  user_regs_struct regs;
  if (ptrace(PTRACE_GETREGS, tid, 0, &regs) < 0) return make_error("PTRACE_GETREGS(%d): %s", tid, strerror(errno));
  if (regs.orig_rax != SYS_futex || static_cast<long>(regs.rax) != -kErestartsys) return {};
  regs.orig_rax = ~0ull;
  regs.rax = static_cast<u64>(-EINTR);
  if (ptrace(PTRACE_SETREGS, tid, 0, &regs) < 0) return make_error("PTRACE_SETREGS(%d): %s", tid, strerror(errno));
  return {};
}

// Lets every thread run, one syscall stop at a time, until each stands
// outside the restorer region: at the exit of its rt_sigreturn, with the
// program's registers. The threads go side by side: each pass resumes all
// that are still inside, then takes each one's next stop, so the round
// trips of a stop (~25 us each on this VM: a wake-up of the thread, its
// stop, a wake-up of ours) overlap instead of adding up thread by thread
// (the JVM's 14 threads).
Status follow_out(const Handover &h, std::vector<int> &deferred) {
  std::vector<pid_t> inside;
  for (pid_t tid : h.tids) {
    user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, tid, 0, &regs) < 0) return make_error("PTRACE_GETREGS(%d): %s", tid, strerror(errno));
    if (in_region(h, regs.rip)) inside.push_back(tid);
  }
  for (long n = 0; !inside.empty(); n++) {
    if (n == kMaxStops) return make_error("thread %d did not leave the restorer", inside[0]);
    for (pid_t tid : inside)
      if (ptrace(PTRACE_SYSCALL, tid, 0, 0) < 0) return make_error("PTRACE_SYSCALL(%d): %s", tid, strerror(errno));
    size_t kept = 0;
    for (pid_t tid : inside) {
      int status = 0;
      CKPT_TRY(wait_stop(tid, &status));
      keep_signal(status, deferred);
      user_regs_struct regs;
      if (ptrace(PTRACE_GETREGS, tid, 0, &regs) < 0) return make_error("PTRACE_GETREGS(%d): %s", tid, strerror(errno));
      if (in_region(h, regs.rip)) inside[kept++] = tid;
    }
    inside.resize(kept);
  }
  return {};
}

// munmap(region) in the leader, through the [vdso]'s `syscall`, with every
// signal blocked so that none is delivered on the injected call's way out.
Status unmap_region(const Handover &h, pid_t tid) {
  if (!h.syscall_insn) return make_error("no [vdso] syscall instruction to borrow");
  user_regs_struct saved, regs;
  u64 mask = 0, all = ~u64(0);
  if (ptrace(PTRACE_GETREGS, tid, 0, &saved) < 0) return make_error("PTRACE_GETREGS: %s", strerror(errno));
  if (ptrace(PTRACE_GETSIGMASK, tid, sizeof mask, &mask) < 0) return make_error("PTRACE_GETSIGMASK: %s", strerror(errno));
  if (ptrace(PTRACE_SETSIGMASK, tid, sizeof all, &all) < 0) return make_error("PTRACE_SETSIGMASK: %s", strerror(errno));
  regs = saved;
  regs.rip = h.syscall_insn;
  regs.rax = 11;  // munmap
  regs.orig_rax = ~0ull;
  regs.rdi = h.region_start;
  regs.rsi = h.region_end - h.region_start;
  Status s = {};
  if (ptrace(PTRACE_SETREGS, tid, 0, &regs) < 0) s = make_error("PTRACE_SETREGS: %s", strerror(errno));
  long result = 0;
  for (int stop = 0; s && stop < 2; stop++) {  // syscall entry, then exit
    int status = 0;
    if (ptrace(PTRACE_SYSCALL, tid, 0, 0) < 0) s = make_error("PTRACE_SYSCALL: %s", strerror(errno));
    else s = wait_stop(tid, &status);
    if (s && WSTOPSIG(status) != (SIGTRAP | 0x80)) stop--;  // an event stop on the way
  }
  if (s && ptrace(PTRACE_GETREGS, tid, 0, &regs) == 0) result = static_cast<long>(regs.rax);
  // Back to exactly the program's state: not inside any syscall (no
  // restart on the way out), its own mask.
  saved.orig_rax = ~0ull;
  if (ptrace(PTRACE_SETREGS, tid, 0, &saved) < 0 && s) s = make_error("PTRACE_SETREGS: %s", strerror(errno));
  if (ptrace(PTRACE_SETSIGMASK, tid, sizeof mask, &mask) < 0 && s) s = make_error("PTRACE_SETSIGMASK: %s", strerror(errno));
  if (s && result < 0) s = make_error("munmap: %s", strerror(static_cast<int>(-result)));
  return s;
}

}  // namespace

// The first `syscall` instruction (0f 05) in [start, start+len), as an
// offset, or 0.
static u64 first_syscall(const u8 *p, u64 len) {
  for (u64 i = 0; i + 1 < len; i++)
    if (p[i] == 0x0f && p[i + 1] == 0x05) return i;
  return 0;
}

// A `syscall` instruction in this process's [vdso], as an offset: the
// restored process has the same vDSO (check_vdso_matches) at the image's
// address. The vDSO is found by its ELF header, which the kernel names in
// the auxiliary vector (AT_SYSINFO_EHDR), and scanned to the end of its
// PT_LOADs: no /proc/self/maps read between the restorer's success and the
// handover (decision 235). The mapping's rest is the page's zero padding,
// so the first match is the one the whole mapping gives; maps are read only
// where that header is missing or has no match.
static u64 vdso_syscall_offset() {
  const auto *eh = reinterpret_cast<const Elf64_Ehdr *>(getauxval(AT_SYSINFO_EHDR));
  if (eh && std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_phentsize == sizeof(Elf64_Phdr)) {
    const auto *base = reinterpret_cast<const u8 *>(eh);
    const auto *ph = reinterpret_cast<const Elf64_Phdr *>(base + eh->e_phoff);
    u64 end = 0;
    for (unsigned i = 0; i < eh->e_phnum; i++)
      if (ph[i].p_type == PT_LOAD) end = std::max<u64>(end, ph[i].p_offset + ph[i].p_filesz);
    if (u64 at = first_syscall(base, end)) return at;
  }
  auto self = read_self_maps();
  if (!self) return 0;
  for (const SelfMapping &m : *self)
    if (m.name == "[vdso]") return first_syscall(reinterpret_cast<const u8 *>(m.start), m.end - m.start);
  return 0;
}

Handover handover_of(const CkptView &v, pid_t pid, const rs_handover &where) {
  Handover h;
  h.pid = pid;
  const TaskRecord &task = v.tasks.records[0];
  h.tids.push_back(task.pid);
  for (const ThreadRecord &t : v.threads.records)
    if (t.tid != task.pid) h.tids.push_back(t.tid);
  h.region_start = where.region_start;
  h.region_end = where.region_end;
  h.threads_go = where.threads_go;
  u64 offset = vdso_syscall_offset();
  for (const VmaRecord &m : v.vmas.records)
    if (static_cast<VmaKind>(m.kind) == VmaKind::Vdso && offset && offset < m.end - m.start)
      h.syscall_insn = m.start + offset;
  h.stopped = (task.flags & kTaskStopped) != 0;
  return h;
}

namespace {

// One process under our ptrace between take_over and let_go.
struct Taken {
  const Handover *h = nullptr;
  std::vector<pid_t> attached;
  std::vector<int> deferred;      ///< stop signals held back meanwhile
};

// Everything up to the program's first instruction: attach to every
// thread (parked in the restorer), release them, follow them all through
// their rt_sigreturn, unmap the restorer region. Leaves every thread in a ptrace
// stop at the program's instruction.
Status take_over(Taken &t, std::string *warning) {
  const Handover &h = *t.h;
  // Every thread is seized and interrupted before any stop is waited for:
  // the interrupts' round trips overlap.
  for (pid_t tid : h.tids) {
    // Suspending seccomp (root only) lets the injected munmap through the
    // filters the threads install on their way out.
    long opts = PTRACE_O_TRACESYSGOOD | kSuspendSeccomp;
    if (ptrace(PTRACE_SEIZE, tid, 0, opts) < 0 && (errno != EPERM || ptrace(PTRACE_SEIZE, tid, 0, PTRACE_O_TRACESYSGOOD) < 0))
      return make_error("PTRACE_SEIZE(%d): %s", tid, strerror(errno));
    t.attached.push_back(tid);
  }
  // A test sends a stop signal here, between the seize and the interrupt
  // (the stop the deferral below keeps).
  CKPT_TRY(fault_point("restore-seized"));
  for (pid_t tid : h.tids)
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0) return make_error("PTRACE_INTERRUPT(%d): %s", tid, strerror(errno));
  for (pid_t tid : h.tids) {
    int status = 0;
    CKPT_TRY(wait_stop(tid, &status));
    // A stop signal that came first stops the thread before the interrupt
    // does: held back, and the interrupt's stop follows on the next resume.
    keep_signal(status, t.deferred);
    if ((status >> 16) == PTRACE_EVENT_STOP) CKPT_TRY(skip_futex_restart(tid));
  }
  // Release the threads parked on threads_go (a u32 in a u64 word).
  errno = 0;
  long word = ptrace(PTRACE_PEEKDATA, h.tids[0], h.threads_go, 0);
  if (errno) return make_error("PTRACE_PEEKDATA: %s", strerror(errno));
  word = (word & ~0xffffffffl) | 1;
  if (ptrace(PTRACE_POKEDATA, h.tids[0], h.threads_go, word) < 0)
    return make_error("PTRACE_POKEDATA: %s", strerror(errno));
  CKPT_TRY(follow_out(h, t.deferred));
  if (Status s = unmap_region(h, h.tids[0]); !s && warning)
    *warning = "the restorer's memory stays mapped in the restored process (" + s.error().message() + ")";
  return {};
}

// The program runs from here.
void let_go(Taken &t) {
  // A stopped image stops again before its first instruction: the stop is
  // pending when the threads leave their ptrace stops.
  if (t.h->stopped) kill(t.h->pid, SIGSTOP);
  for (size_t i = 0; i < t.attached.size(); i++) {
    pid_t tid = t.attached[i];
    // The program runs from the first detach on; the point lets a test end
    // it before the other threads are let go (its :eio form does nothing:
    // nothing can be undone here).
    if (i == 1) (void)fault_point("restore-letting-go");
    if (ptrace(PTRACE_DETACH, tid, 0, 0) == 0 || errno != ESRCH) continue;
    // Kernel quirk: the first threads let go run the program at once, and
    // a program that ends at once (a warm start's exit_group) kills the
    // threads still to be let go. SIGKILL takes a thread out of its ptrace
    // stop, so PTRACE_DETACH fails (ESRCH: not stopped), yet the thread
    // stays ours: it exits into a zombie that only its tracer's wait
    // releases, and the leader is not reaped before every thread is gone
    // (release_task, delay_group_leader). Unreaped, restore's wait for the
    // process hung for good (seen with the JVM's 14 threads under load).
    // Nothing else wakes a tracee from its stop: this one is dying. Not
    // the leader, which is let go first (nothing of the program runs
    // before it) and whose wait may be the exit status restore reports.
    if (tid == t.h->pid) continue;
    for (;;) {
      int status;
      pid_t r = waitpid(tid, &status, __WALL);
      if (r < 0 && errno == EINTR) continue;
      if (r != tid || WIFEXITED(status) || WIFSIGNALED(status)) break;
      if (ptrace(PTRACE_DETACH, tid, 0, 0) == 0) break;  // a stop after all: let it go
    }
  }
  for (int sig : t.deferred) kill(t.h->pid, sig);
}

}  // namespace

Status hand_over(const Handover &h, std::string *warning) { return hand_over_all({h}, warning); }

Status hand_over_all(const std::vector<Handover> &processes, std::string *warning) {
  std::vector<Taken> taken(processes.size());
  for (size_t i = 0; i < processes.size(); i++) {
    taken[i].h = &processes[i];
    if (Status s = take_over(taken[i], warning); !s) {
      // Nothing of any program has run: end them all rather than let one
      // run from a half-done handover.
      for (const Handover &h : processes) kill(h.pid, SIGKILL);
      for (Taken &t : taken)
        for (pid_t tid : t.attached) ptrace(PTRACE_DETACH, tid, 0, 0);
      std::string what = processes.size() > 1 ? "handing process " + std::to_string(processes[i].pid) + " over"
                                              : std::string("handing the process over");
      return s.error().context(what);
    }
  }
  // Every process stands at its first instruction: now they all run.
  for (Taken &t : taken) let_go(t);
  return {};
}

}  // namespace ckpt::reader
