// Kill-safety of injected syscalls (docs/DECISIONS.md 161): while a thread
// is borrowed for an injected syscall, its registers are not its own. If
// imgtool dies then (SIGKILL by an OOM killer or a job scheduler), the
// kernel detaches the thread and lets it run on with whatever registers it
// has (exit_ptrace -> __ptrace_unlink wakes the tracee from its ptrace
// stop): without care, the injected ones, and the program is broken.
//
// So before the first injected syscall, a signal frame holding the thread's
// own registers, FPU/AVX state and signal mask is written on its stack
// below the scratch space, and the borrowed registers are always such that
// the thread, let go, ends in rt_sigreturn on that frame:
//   - before the syscall entry stop: rip at the borrowed `syscall`
//     instruction with rax = rt_sigreturn (the real number is set only at
//     the entry stop, in orig_rax);
//   - from the entry stop on: rip at a `mov $15,%rax; syscall` sequence of
//     the process (glibc's __restore_rt), where the injected syscall returns.
// Either way the thread comes back exactly as it was frozen (an interrupted
// syscall gets restarted as the kernel would have). In the normal case the
// frame is never used: the registers are put back with PTRACE_SETREGS and
// the frame's stack bytes restored.
#pragma once

#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/format.h>

namespace ckpt::writer {

struct ReturnFrame {
  /// rsp for the borrowed registers: rt_sigreturn reads its frame at rsp-8.
  img::u64 rsp = 0;
  /// The stack bytes the frame covers, put back by restore_stack().
  img::u64 start = 0;
  std::vector<img::u8> saved_bytes;
};

/// Writes the frame for thread tid (frozen with `regs`) on its stack below
/// `below` (an address: the scratch space ends there). An error when the
/// thread's state or stack cannot be read or written.
img::Expected<ReturnFrame> write_return_frame(pid_t tid, const img::UserRegs &regs, img::u64 below);

/// Puts the stack bytes the frame covered back.
img::Status restore_stack(pid_t tid, const ReturnFrame &frame);

/// The address of a `mov $15,%rax; syscall` (rt_sigreturn) sequence in an
/// executable mapping of pid, or 0 when there is none (a static program
/// that installs no signal handler may have none).
img::u64 find_sigreturn_sequence(pid_t pid);

/// Searches the sequence in root and its descendants now, before the
/// freeze; find_sigreturn_sequence then only checks it is still there.
void prime_sigreturn_sequences(pid_t root);

}  // namespace ckpt::writer
