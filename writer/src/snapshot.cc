#include "snapshot.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <fcntl.h>
#include <poll.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <ckpt/img/fault_point.h>

#include "dump_guard.h"
#include "frozen_phases.h"
#include "inject.h"
#include "snapshot_cgroup.h"
#include "snapshot_plan.h"

namespace ckpt::writer {

using namespace img;

// clone3's flags (linux/sched.h); spelled out so that older headers build.
static constexpr u64 kCloneFiles = 0x00000400;
static constexpr u64 kCloneUntraced = 0x00800000;
static constexpr u64 kCloneIntoCgroup = 0x200000000ull;

// struct clone_args, CLONE_ARGS_SIZE_VER2 (with the cgroup field).
struct CloneArgs {
  u64 flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};
static_assert(sizeof(CloneArgs) == 88);

// Memory a fork does not copy as it is read from the target while it is
// still frozen and kept in our memory; more than this and the dump uses
// the full freeze instead (the copy would not shorten it much, and
// imgtool's memory stays bounded).
static constexpr u64 kMaxEarlyBytes = 256ull << 20;

const u8 *PagesReadEarlier::find(u64 addr, u64 len) const {
  auto it = runs_.upper_bound(addr);
  if (it == runs_.begin()) return nullptr;
  --it;
  if (addr + len > it->first + it->second.size()) return nullptr;
  return it->second.data() + (addr - it->first);
}

u64 PagesReadEarlier::bytes() const {
  u64 n = 0;
  for (const auto &[at, b] : runs_) n += b.size();
  return n;
}

static u64 early_bytes_of(const std::vector<VmaPlan> &early) {
  u64 n = 0;
  for (const VmaPlan &v : early)
    for (const PageRun &r : v.runs)
      if (r.source == PageSource::Image) n += r.length;
  return n;
}

static Status read_early(pid_t pid, const std::vector<VmaPlan> &plan, PagesReadEarlier &early) {
  int mem = open_mem(pid);
  if (mem < 0) return make_error("cannot open /proc/%d/mem: %s", pid, strerror(errno));
  Status s;
  for (const VmaPlan &v : plan) {
    for (const PageRun &r : v.runs) {
      if (r.source != PageSource::Image || !s) continue;
      std::vector<u8> bytes(r.length);
      size_t got = read_mem_at(mem, r.start, bytes.data(), r.length);
      if (got == r.length) early.add(r.start, std::move(bytes));
      else
        s = make_error("pid %d: cannot read the page at 0x%llx: %s", pid, (unsigned long long)(r.start + got),
                       errno ? strerror(errno) : "end of memory");
    }
  }
  close(mem);
  return s;
}

// Injects into thread tid (in an interrupt stop, registers `regs`): runs
// `body` with the thread's seccomp filters suspended (as capture.cc does).
template <typename Body>
static Status with_injector(pid_t tid, u64 insn, const UserRegs &regs, bool seccomp, Body body) {
  constexpr long kFreezeOptions = PTRACE_O_TRACECLONE | PTRACE_O_TRACESYSGOOD;
  bool suspended = seccomp && ptrace(PTRACE_SETOPTIONS, tid, 0, kFreezeOptions | PTRACE_O_SUSPEND_SECCOMP) == 0;
  Injector inj(tid, insn, regs);
  Status s = body(inj);
  Status r = inj.restore();
  if (suspended) ptrace(PTRACE_SETOPTIONS, tid, 0, kFreezeOptions);
  if (!s) return s;
  return r;
}

// wait4(child, NULL, __WCLONE, NULL) through inj: the copy is a clone
// child (exit_signal 0), which only __WCLONE or __WALL waits see.
Status reap_with(Injector &inj, pid_t target, pid_t child) {
  auto r = inj.call(SYS_wait4, {u64(child), 0, u64(__WCLONE), 0});
  if (!r) return r.error();
  if (*r != child)
    return make_error("cannot reap the snapshot copy %d of process %d: wait4: %s", child, target,
                      *r < 0 ? strerror(int(-*r)) : "another child");
  return {};
}

// The same in the frozen thread tid.
static Status reap_in(pid_t target, pid_t tid, u64 insn, const UserRegs &regs, bool seccomp, pid_t child) {
  return with_injector(tid, insn, regs, seccomp, [&](Injector &inj) { return reap_with(inj, target, child); });
}

void kill_copy(pid_t child, int pidfd) {
  int own = -1;
  if (pidfd < 0) pidfd = own = int(syscall(SYS_pidfd_open, child, 0));
  if (pidfd < 0) return;
  syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
  struct pollfd p = {pidfd, POLLIN, 0};
  for (int i = 0; i < 100 && poll(&p, 1, 100) == 0; i++) {
  }
  if (own >= 0) close(own);
}

Status inject_in_refrozen(pid_t target, const std::function<Status(Injector &)> &body) {
  // The target is frozen again for the injection. Right after imgtool died
  // (the guard's case) it may still be traced by the dying imgtool for a
  // moment: PTRACE_SEIZE fails then, so retry for a while.
  std::unique_ptr<FrozenProcess> frozen;
  for (int attempt = 0;; attempt++) {
    auto f = FrozenProcess::freeze(target);
    if (f) {
      frozen = std::make_unique<FrozenProcess>(f.take());
      break;
    }
    // A target gone meanwhile took its copy with it (reparented to a reaper).
    if (kill(target, 0) < 0) return {};
    if (attempt == 250) return f.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_t tid = frozen->threads()[0].tid;
  UserRegs regs;
  if (ptrace(PTRACE_GETREGS, tid, 0, &regs) < 0) return make_error("PTRACE_GETREGS(%d): %s", tid, strerror(errno));
  auto maps = read_maps(target, true);
  if (!maps) return maps.error();
  u64 insn = find_vdso_syscall(target, *maps);
  if (!insn) return make_error("process %d has no [vdso] with a syscall instruction to borrow", target);
  auto status = read_status(target, tid);
  Status s = with_injector(tid, insn, regs, status && status->seccomp_mode != 0, body);
  Status r = frozen->release();
  if (!s) return s;
  return r;
}

// Reaps the (dead) copy with only the target's main thread stopped: the
// other threads run on (DECISIONS.md 176). The `syscall` instruction is
// the one the clone borrowed, checked again (reading smaps for [vdso]
// would walk every page table). Any failure here falls back to the whole
// process frozen (inject_in_refrozen).
static Status reap_in_leader(const ProcessSnapshot &c) {
  u8 insn[2] = {};
  struct iovec local = {insn, 2}, remote = {reinterpret_cast<void *>(c.syscall_insn), 2};
  if (!c.syscall_insn || process_vm_readv(c.target, &local, 1, &remote, 1, 0) != 2 || insn[0] != 0x0f ||
      insn[1] != 0x05)
    return make_error("no syscall instruction at 0x%llx", (unsigned long long)c.syscall_insn);
  auto f = FrozenProcess::freeze(c.target, nullptr, true);
  if (!f) return f.error();
  FrozenProcess frozen = f.take();
  pid_t tid = frozen.threads()[0].tid;
  UserRegs regs;
  if (ptrace(PTRACE_GETREGS, tid, 0, &regs) < 0) return make_error("PTRACE_GETREGS(%d): %s", tid, strerror(errno));
  auto status = read_status(c.target, tid);
  Status s = with_injector(tid, c.syscall_insn, regs, status && status->seccomp_mode != 0,
                           [&](Injector &inj) { return reap_with(inj, c.target, c.copy); });
  Status r = frozen.release();
  if (!s) return s;
  return r;
}

Status reap_snapshot_copy(pid_t target, pid_t child, int child_pidfd) {
  kill_copy(child, child_pidfd);
  return inject_in_refrozen(target, [&](Injector &inj) { return reap_with(inj, target, child); });
}

// Runs clone3 in the target's leader: the copy is born in our frozen
// cgroup (CLONE_INTO_CGROUP needs an fd of the cgroup in the target: an
// injected openat, closed again at once), untraced (CLONE_UNTRACED: our
// PTRACE_O_TRACECLONE must not seize it), sharing the fd table
// (CLONE_FILES: the copy holds no extra reference to any open file, so a
// pipe or socket the program closes meanwhile still shows EOF at its peer
// at once) and with exit_signal 0 (no SIGCHLD, invisible to wait()).
static Expected<pid_t> clone_copy(const ProcessCapture &pc, const std::string &cgroup, DumpGuard &guard) {
  const ThreadCapture &t = pc.threads[0];
  const u64 insn = pc.syscall_insn;
  if (!insn) return make_error("process %d has no [vdso] with a syscall instruction to borrow", pc.pid);
  // Scratch on the stack below the red zone and below Injector::call_out's
  // scratch: the clone arguments and the cgroup's path.
  constexpr u64 kScratch = 512, kPathAt = 128;
  if (cgroup.size() + 1 > kScratch - kPathAt) return make_error("cgroup path %s is too long", cgroup.c_str());
  u64 base = (t.regs.rsp - 128 - 256 - kScratch) & ~u64(15);
  u8 saved[kScratch];
  struct iovec local = {saved, kScratch}, remote = {reinterpret_cast<void *>(base), kScratch};
  if (process_vm_readv(pc.pid, &local, 1, &remote, 1, 0) != ssize_t(kScratch))
    return make_error("cannot read the stack of process %d at 0x%llx: %s", pc.pid, (unsigned long long)base,
                      strerror(errno));
  u8 scratch[kScratch] = {};
  std::memcpy(scratch + kPathAt, cgroup.c_str(), cgroup.size() + 1);
  auto put = [&](pid_t into, const u8 *bytes) {
    struct iovec l = {const_cast<u8 *>(bytes), kScratch};
    return process_vm_writev(into, &l, 1, &remote, 1, 0) == ssize_t(kScratch);
  };
  if (!put(pc.pid, scratch)) return make_error("cannot write the stack of process %d: %s", pc.pid, strerror(errno));
  pid_t child = 0;
  bool seccomp = pc.thread_status[0].seccomp_mode != 0;
  Status s = with_injector(t.tid, insn, t.regs, seccomp, [&](Injector &inj) -> Status {
    mark_frozen_phase("snapshot: clone prepared");
    auto fd = inj.call(SYS_openat, {u64(AT_FDCWD), base + kPathAt, u64(O_RDONLY | O_DIRECTORY | O_CLOEXEC)});
    if (!fd) return fd.error();
    if (*fd < 0) return make_error("openat(%s) in process %d: %s", cgroup.c_str(), pc.pid, strerror(int(-*fd)));
    CloneArgs args{};
    args.flags = kCloneIntoCgroup | kCloneUntraced | kCloneFiles;
    args.exit_signal = 0;
    args.cgroup = u64(*fd);
    std::memcpy(scratch, &args, sizeof args);
    Status st;
    if (!put(pc.pid, scratch)) st = make_error("cannot write the stack of process %d: %s", pc.pid, strerror(errno));
    if (st) {
      mark_frozen_phase("snapshot: openat cgroup");
      auto r = inj.call(SYS_clone3, {base, sizeof(CloneArgs)});
      mark_frozen_phase("snapshot: clone3");
      if (!r) st = r.error();
      else if (*r < 0) st = make_error("clone3 in process %d: %s", pc.pid, strerror(int(-*r)));
      else {
        child = pid_t(*r);
        guard.copy_made(pc.pid, child);
      }
    }
    auto closed = inj.call(SYS_close, {u64(*fd)});
    if (st && !closed) st = closed.error();
    return st;
  });
  mark_frozen_phase("snapshot: close, injector restored");
  // The scratch bytes go back in the target and in the copy (which took
  // them over at the clone), so the image holds the program's own.
  bool restored = put(pc.pid, saved);
  if (child > 0 && !put(child, saved) && s)
    s = make_error("cannot write the stack of the snapshot copy %d: %s", child, strerror(errno));
  if (!restored && s) s = make_error("cannot restore the stack of process %d: %s", pc.pid, strerror(errno));
  if (!s) {
    if (child > 0) {
      kill_copy(child, -1);
      (void)reap_in(pc.pid, t.tid, insn, t.regs, seccomp, child);
    }
    return s.error();
  }
  return child;
}

Expected<std::unique_ptr<Snapshot>> Snapshot::take(const std::vector<const ProcessCapture *> &procs, DumpGuard &guard,
                                                   PreparedCgroup *cgroup) {
  std::vector<std::vector<VmaPlan>> early_plans;
  u64 early = 0;
  for (const ProcessCapture *pc : procs) {
    auto plan = plan_read_while_frozen(pc->pid, pc->memory, pc->excluded);
    if (!plan) return plan.error();
    early += early_bytes_of(*plan);
    early_plans.push_back(plan.take());
  }
  mark_frozen_phase("snapshot: early mappings planned");
  if (early > kMaxEarlyBytes)
    return make_error("%llu MiB of shared or fork-excluded memory", (unsigned long long)(early >> 20));
  std::unique_ptr<Snapshot> snap(new Snapshot());
  std::vector<pid_t> targets;
  for (const ProcessCapture *pc : procs) targets.push_back(pc->pid);
  auto cg = make_frozen_cgroup(targets, [&](const std::string &path) { guard.snapshot_cgroup(path); },
                               cgroup ? cgroup->take() : std::string());
  if (!cg) return cg.error();
  snap->cgroup_ = cg.take();
  mark_frozen_phase("snapshot: cgroup made");
  // Pages fork does not copy first: a failure there leaves no copy to undo.
  for (size_t i = 0; i < procs.size(); i++) {
    const ProcessCapture *pc = procs[i];
    auto ps = std::make_unique<ProcessSnapshot>();
    ps->target = pc->pid;
    ps->leader = pc->threads[0].tid;
    ps->syscall_insn = pc->syscall_insn;
    ps->early_plan = std::move(early_plans[i]);
    Status early_read = read_early(pc->pid, ps->early_plan, ps->early);
    if (early_read) {
      auto witnesses = read_stack_witnesses(*pc);
      if (witnesses) ps->witnesses = witnesses.take();
      else early_read = witnesses.error();
    }
    if (!early_read) {
      snap->copies_.clear();
      snap->finished_ = true;
      snap->tidy();
      return early_read.error();
    }
    snap->copies_.push_back(std::move(ps));
  }
  mark_frozen_phase("snapshot: early reads");
  for (size_t i = 0; i < procs.size(); i++) {
    guard.opening_cgroup_in(procs[i]->pid);
    auto child = clone_copy(*procs[i], snap->cgroup_, guard);
    if (!child) {
      // The copies made so far are children of targets we still hold
      // frozen: reap them under this freeze, not a new one.
      for (size_t k = 0; k < i; k++) {
        const ProcessCapture *owner = procs[k];
        ProcessSnapshot &made = *snap->copies_[k];
        kill_copy(made.copy, made.copy_pidfd);
        (void)reap_in(owner->pid, owner->threads[0].tid, owner->syscall_insn, owner->threads[0].regs,
                      owner->thread_status[0].seccomp_mode != 0, made.copy);
        if (made.copy_pidfd >= 0) close(made.copy_pidfd);
      }
      snap->copies_.clear();
      snap->finished_ = true;
      snap->tidy();
      return child.error();
    }
    snap->copies_[i]->copy = *child;
    snap->copies_[i]->copy_pidfd = int(syscall(SYS_pidfd_open, *child, 0));
    // The fault tests' stand-in for the copy going wrong (the check in
    // snapshot_witness.h must catch it): zeros over its page at rsp.
    if (fault_point_armed("snapshot-copy-stack-zeroed")) zero_page_for_test(*child, procs[i]->threads[0].regs.rsp);
  }
  return snap;
}

Expected<double> Snapshot::finish() {
  if (finished_) return 0.0;
  finished_ = true;
  Status result;
  // The copies die first (not frozen time: the targets run meanwhile),
  // then each is reaped with its target's main thread stopped.
  for (auto &c : copies_) kill_copy(c->copy, c->copy_pidfd);
  auto t0 = std::chrono::steady_clock::now();
  for (auto &c : copies_) {
    pid_t target = c->target, copy = c->copy;
    Status s = reap_in_leader(*c);
    // Still our zombie (the leader could not be stopped alone: it exited,
    // or is traced): the whole process is frozen for the wait4.
    if (!s && kill(copy, 0) == 0)
      s = inject_in_refrozen(target, [&](Injector &inj) { return reap_with(inj, target, copy); });
    else
      s = {};
    if (c->copy_pidfd >= 0) close(c->copy_pidfd);
    c->copy_pidfd = -1;
    if (!s && result) result = s;
  }
  double frozen = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  tidy();
  if (!result) return result.error();
  return frozen;
}

void Snapshot::tidy() {
  if (!cgroup_.empty()) remove_cgroup(cgroup_);
  cgroup_.clear();
}

Snapshot::~Snapshot() {
  if (!finished_) (void)finish();
  tidy();
}

}  // namespace ckpt::writer
