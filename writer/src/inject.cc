#include "inject.h"

#include "procfs.h"

#include <ckpt/img/fault_point.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

namespace ckpt::writer {

using img::make_error;
using img::u8;


// Scratch space: below the 128-byte red zone of the x86-64 ABI, so no live
// data of the interrupted function is touched.
static constexpr u64 kRedZone = 128;
static constexpr u64 kScratchSize = 256;

Injector::Injector(pid_t tid, u64 syscall_insn, const img::UserRegs &regs)
    : tid_(tid), insn_(syscall_insn), saved_(regs) {}

Injector::~Injector() {
  if (ran_ && !restored_) (void)restore();
  unmask();  // the thread's own mask back, even when restore() failed
}

static Status set_regs(pid_t tid, const img::UserRegs &r) {
  static_assert(sizeof(img::UserRegs) == sizeof(user_regs_struct));
  if (ptrace(PTRACE_SETREGS, tid, 0, &r) < 0) return make_error("PTRACE_SETREGS(%d): %s", tid, strerror(errno));
  return {};
}

// The thread group of tid (its mappings are the process's).
static pid_t tid_group(pid_t tid) {
  auto status = read_status(tid);
  return status ? status->tgid : tid;
}

// Signals while we borrow the thread: none is ever taken out of the kernel
// (DECISIONS 178). Before the first injected syscall every blockable
// signal is blocked in the thread (PTRACE_SETSIGMASK; its own mask is in
// the return frame and put back by restore()), so whatever arrives, or was
// pending, stays queued with its siginfo and is delivered once the thread
// runs its own code again: after the dump, or through the return frame's
// rt_sigreturn if imgtool dies first (an earlier design suppressed such
// signals and sent them again later, and a dumper killed in between lost
// them). What can still stop the thread is a signal no mask holds back:
// SIGSTOP (a shell's kill -STOP during the dump) or a synchronous signal
// the kernel forces. It is passed on, as the thread would have taken it
// without us: for SIGSTOP the kernel starts the group stop (reported to us
// as PTRACE_EVENT_STOP, which we resume from) and, when we detach or die,
// __ptrace_unlink puts every thread into it (it re-arms
// JOBCTL_STOP_PENDING while the group stop is in effect), so the process
// ends up stopped as the shell asked. SIGTRAP is ptrace's own.
static Status pass_signal_on(pid_t tid, int status) {
  int sig = WSTOPSIG(status);
  bool delivery = (status >> 16) == 0 && sig != SIGTRAP;
  if (ptrace(PTRACE_SYSCALL, tid, 0, delivery ? sig : 0) < 0)
    return make_error("PTRACE_SYSCALL(%d): %s", tid, strerror(errno));
  if (delivery) CKPT_TRY(img::fault_point("dump-signal-arrived"));
  return {};
}

// Resumes to the next syscall stop (entry or exit) of tid.
static Status to_syscall_stop(pid_t tid) {
  if (ptrace(PTRACE_SYSCALL, tid, 0, 0) < 0) return make_error("PTRACE_SYSCALL(%d): %s", tid, strerror(errno));
  int foreign_stops = 0;
  for (;;) {
    int status;
    if (waitpid(tid, &status, __WALL) < 0) {
      if (errno == EINTR) continue;
      return make_error("waitpid(%d): %s", tid, strerror(errno));
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) return make_error("thread %d exited during the dump", tid);
    if (WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80)) return {};
    if (WIFSTOPPED(status)) {
      // Bounded by the signals pending, plus any arriving meanwhile.
      if (++foreign_stops > 1024) return make_error("thread %d keeps stopping during an injected syscall", tid);
      CKPT_TRY(pass_signal_on(tid, status));
    }
  }
}

// Scratch space of the snapshot's clone (snapshot.cc) ends 896 bytes below
// rsp; the return frame goes below that.
static constexpr u64 kReturnFrameBelow = 1024;

Status Injector::prepare() {
  // Without the frame (a stack too close to its end, unreadable state) the
  // injection works as before, only not kill-safe: the dump is not failed
  // for a safety net it does not need on its normal path.
  auto frame = write_return_frame(tid_, saved_, saved_.rsp - kReturnFrameBelow);
  if (frame) frame_ = frame.take();
  sigreturn_at_ = find_sigreturn_sequence(tid_group(tid_));
  // Kernel quirk: PTRACE_GETSIGMASK of a thread inside sigsuspend/ppoll
  // gives the mask it will go back to (saved_sigmask), and SETSIGMASK
  // clears TIF_RESTORE_SIGMASK: its syscall restarts after the dump and
  // sets its temporary mask again. The frame holds the same mask.
  if (ptrace(PTRACE_GETSIGMASK, tid_, sizeof own_mask_, &own_mask_) < 0)
    return make_error("cannot read the signal mask of thread %d: %s", tid_, strerror(errno));
  // Registers that end in rt_sigreturn on the frame before the mask
  // changes: a dumper killed from here on gives the thread its own mask
  // back with its registers.
  if (frame_) {
    img::UserRegs idle = saved_;
    idle.rip = insn_;
    idle.rax = SYS_rt_sigreturn;
    idle.orig_rax = ~0ull;
    idle.rsp = frame_->rsp;
    CKPT_TRY(set_regs(tid_, idle));
  }
  u64 all = ~u64(0);  // the kernel leaves SIGKILL and SIGSTOP out
  if (ptrace(PTRACE_SETSIGMASK, tid_, sizeof all, &all) < 0)
    return make_error("cannot block signals in thread %d: %s", tid_, strerror(errno));
  masked_ = true;
  return {};
}

void Injector::unmask() {
  if (!masked_) return;
  // The thread is in a ptrace stop: its pending signals wait until it runs.
  if (ptrace(PTRACE_SETSIGMASK, tid_, sizeof own_mask_, &own_mask_) == 0) masked_ = false;
}

Expected<long> Injector::call(long nr, std::initializer_list<u64> args) {
  if (!ran_) {
    ran_ = true;
    CKPT_TRY(prepare());
  }
  CKPT_TRY(img::fault_point("dump-injecting"));
  img::UserRegs r = saved_;
  r.rip = insn_;
  r.rax = nr;
  // orig_rax = -1 tells the kernel's signal-return path that this is not
  // an interrupted syscall to restart; otherwise it would rewrite our rip.
  r.orig_rax = ~0ull;
  u64 a[6] = {};
  size_t i = 0;
  for (u64 v : args) a[i++] = v;
  r.rdi = a[0];
  r.rsi = a[1];
  r.rdx = a[2];
  r.r10 = a[3];
  r.r8 = a[4];
  r.r9 = a[5];
  // Kill-safety (inject_return_frame.h): until the entry stop the thread,
  // let go, would run rt_sigreturn on the frame, not our syscall.
  if (frame_) {
    r.rax = SYS_rt_sigreturn;
    r.rsp = frame_->rsp;
  }
  CKPT_TRY(set_regs(tid_, r));
  CKPT_TRY(to_syscall_stop(tid_));  // entry
  if (frame_) {
    // The syscall entry stop: the kernel takes the syscall number from
    // orig_rax after the tracer's stop (syscall_trace_enter), and returns to
    // rip, here the rt_sigreturn sequence when the process has one.
    img::UserRegs entry;
    if (ptrace(PTRACE_GETREGS, tid_, 0, &entry) < 0)
      return make_error("PTRACE_GETREGS(%d): %s", tid_, strerror(errno));
    entry.orig_rax = nr;
    if (sigreturn_at_) entry.rip = sigreturn_at_;
    CKPT_TRY(set_regs(tid_, entry));
  }
  // An error here still lets the syscall finish: restore() must find the
  // thread at the exit stop (at the entry stop, the registers it puts back
  // would make the kernel run the thread's own orig_rax as a syscall).
  Status injected = img::fault_point("dump-injected");
  CKPT_TRY(to_syscall_stop(tid_));  // exit
  if (!injected) return injected.error();
  img::UserRegs out;
  if (ptrace(PTRACE_GETREGS, tid_, 0, &out) < 0) return make_error("PTRACE_GETREGS(%d): %s", tid_, strerror(errno));
  if (frame_ && !sigreturn_at_) {
    // No sequence to return to: from here on rt_sigreturn through the
    // borrowed `syscall` instruction (the syscall itself was the window).
    img::UserRegs safe = out;
    safe.rip = insn_;
    safe.rax = SYS_rt_sigreturn;
    CKPT_TRY(set_regs(tid_, safe));
  }
  return static_cast<long>(out.rax);
}

Expected<long> Injector::call_out(long nr, std::initializer_list<u64> args, int pointer_arg, void *out,
                                  size_t out_size) {
  return call_with_scratch(nr, args, pointer_arg, out, out_size, false);
}

Expected<long> Injector::call_inout(long nr, std::initializer_list<u64> args, int pointer_arg, void *inout,
                                    size_t size) {
  return call_with_scratch(nr, args, pointer_arg, inout, size, true);
}

Expected<long> Injector::call_with_scratch(long nr, std::initializer_list<u64> args, int pointer_arg, void *out,
                                           size_t out_size, bool copy_in) {
  if (out_size > kScratchSize) return make_error("injected syscall output of %zu bytes is too large", out_size);
  u64 scratch = (saved_.rsp - kRedZone - kScratchSize) & ~u64(15);
  u8 saved_bytes[kScratchSize];
  struct iovec local = {saved_bytes, out_size}, remote = {reinterpret_cast<void *>(scratch), out_size};
  if (process_vm_readv(tid_, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(out_size))
    return make_error("cannot read the stack of thread %d at 0x%llx: %s", tid_, (unsigned long long)scratch,
                      strerror(errno));
  if (copy_in) {
    struct iovec in = {out, out_size};
    if (process_vm_writev(tid_, &in, 1, &remote, 1, 0) != static_cast<ssize_t>(out_size))
      return make_error("cannot write the stack of thread %d: %s", tid_, strerror(errno));
  }
  std::vector<u64> a(args);
  a.resize(6, 0);
  a[pointer_arg] = scratch;
  auto r = call(nr, {a[0], a[1], a[2], a[3], a[4], a[5]});
  struct iovec result = {out, out_size};
  bool read_ok = process_vm_readv(tid_, &result, 1, &remote, 1, 0) == static_cast<ssize_t>(out_size);
  struct iovec back = {saved_bytes, out_size};
  if (process_vm_writev(tid_, &back, 1, &remote, 1, 0) != static_cast<ssize_t>(out_size))
    return make_error("cannot restore the stack of thread %d: %s", tid_, strerror(errno));
  if (!r) return r;
  if (!read_ok) return make_error("cannot read syscall output from thread %d: %s", tid_, strerror(errno));
  return r;
}

Status Injector::restore() {
  restored_ = true;
  if (!ran_) return {};
  // The thread's own mask first, while its registers still end in
  // rt_sigreturn on the frame (which holds the same mask): killed at any
  // point from here on, the thread has its own mask and registers. On the
  // way to the stop below it takes no signal: get_signal() handles our
  // PTRACE_INTERRUPT trap before it dequeues any.
  unmask();
  if (masked_) return make_error("cannot put back the signal mask of thread %d: %s", tid_, strerror(errno));
  // Put the frozen registers back exactly, then bring the thread back into
  // the kind of stop we found it in: PTRACE_INTERRUPT raises a pending
  // trap, so on its way out of our syscall's exit stop the thread enters
  // get_signal() and stops there, before the kernel's syscall-restart step.
  // When we later detach, that step runs on the original registers, just as
  // it would have without us, and anyone looking meanwhile (gdb's gcore)
  // sees the registers unchanged.
  CKPT_TRY(set_regs(tid_, saved_));
  // Its own registers are back: the frame is not needed any more.
  if (frame_) CKPT_TRY(restore_stack(tid_, *frame_));
  if (ptrace(PTRACE_INTERRUPT, tid_, 0, 0) < 0) return make_error("PTRACE_INTERRUPT(%d): %s", tid_, strerror(errno));
  if (ptrace(PTRACE_CONT, tid_, 0, 0) < 0) return make_error("PTRACE_CONT(%d): %s", tid_, strerror(errno));
  for (int stops = 0; stops < 1024; stops++) {
    int status;
    if (waitpid(tid_, &status, __WALL) < 0) {
      if (errno == EINTR) continue;
      return make_error("waitpid(%d): %s", tid_, strerror(errno));
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) return make_error("thread %d exited during the dump", tid_);
    if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP) {
      img::UserRegs now;
      if (ptrace(PTRACE_GETREGS, tid_, 0, &now) < 0) return make_error("PTRACE_GETREGS(%d): %s", tid_, strerror(errno));
      if (now.rip != saved_.rip || now.rax != saved_.rax)
        return make_error("thread %d did not come back to its frozen state", tid_);
      return {};
    }
    // A signal taken now after all: passed on (see pass_signal_on) on the
    // thread's own registers; a SIGSTOP brings the group stop, anything
    // else fails the check above (the dump fails, nothing is lost).
    int sig = WSTOPSIG(status);
    bool delivery = (status >> 16) == 0 && sig != SIGTRAP;
    if (ptrace(PTRACE_CONT, tid_, 0, delivery ? sig : 0) < 0)
      return make_error("PTRACE_CONT(%d): %s", tid_, strerror(errno));
    ptrace(PTRACE_INTERRUPT, tid_, 0, 0);
  }
  return make_error("thread %d does not stop", tid_);
}

namespace {

u64 find_syscall_instruction(pid_t pid, u64 start, u64 end) {
  if (end <= start || end - start > (1u << 20)) return 0;
  std::vector<u8> buf(end - start);
  struct iovec local = {buf.data(), buf.size()}, remote = {reinterpret_cast<void *>(start), buf.size()};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(buf.size())) return 0;
  for (size_t i = 0; i + 1 < buf.size(); i++)
    if (buf[i] == 0x0f && buf[i + 1] == 0x05) return start + i;
  return 0;
}

}  // namespace

u64 find_vdso_syscall(pid_t pid, const std::vector<MapEntry> &maps) {
  for (const MapEntry &m : maps)
    if (m.path == "[vdso]") return find_syscall_instruction(pid, m.start, m.end);
  return 0;
}

}  // namespace ckpt::writer
