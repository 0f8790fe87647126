// Running single syscalls inside a frozen thread, for the state only the
// process itself can report (rt_sigaction, sigaltstack, getitimer, brk,
// PR_GET_TID_ADDRESS, timer_gettime).
//
// The thread's registers are saved first and put back at the end, and the
// scratch bytes on its stack are restored after every call, so memory read
// afterwards is the process's own. restore() returns the thread to the very
// stop it was frozen in (see inject.cc), so an interrupted syscall is still
// restarted by the kernel, not by us. While borrowed, the thread has every
// signal blocked: what arrives stays queued in the kernel (inject.cc).
#pragma once

#include <optional>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/format.h>

#include "inject_return_frame.h"
#include "procfs.h"

namespace ckpt::writer {

using img::Expected;
using img::Status;
using img::u64;

class Injector {
 public:
  /// `syscall_insn` is the address of a `syscall` instruction (0f 05) in
  /// the target, e.g. inside [vdso]. regs are the thread's frozen registers.
  Injector(pid_t tid, u64 syscall_insn, const img::UserRegs &regs);
  ~Injector();

  /// Runs syscall nr with up to six arguments; returns the raw result
  /// (negative errno on failure, as the kernel returns it).
  Expected<long> call(long nr, std::initializer_list<u64> args);

  /// Runs a syscall whose last pointer argument receives `out_size` bytes:
  /// the pointer is placed on the thread's stack below the red zone, and
  /// the bytes are copied out. `pointer_arg` says which argument (0-based)
  /// is the output pointer.
  Expected<long> call_out(long nr, std::initializer_list<u64> args, int pointer_arg, void *out, size_t out_size);

  /// The same for an argument the syscall reads and writes (an ioctl's
  /// struct): `inout`'s bytes are placed on the stack first.
  Expected<long> call_inout(long nr, std::initializer_list<u64> args, int pointer_arg, void *inout, size_t size);

  /// Puts the thread's registers back and returns it to an interrupt stop
  /// with them unchanged.
  Status restore();

 private:
  pid_t tid_;
  u64 insn_;
  img::UserRegs saved_;
  bool ran_ = false;
  bool restored_ = false;
  /// The frame the thread returns through should imgtool die while it is
  /// borrowed (inject_return_frame.h); none when it could not be written.
  std::optional<ReturnFrame> frame_;
  /// glibc's `mov $15,%rax; syscall`, or 0 (inject_return_frame.h).
  u64 sigreturn_at_ = 0;
  /// Writes the return frame and blocks every signal in the thread while
  /// it is borrowed (inject.cc, pass_signal_on).
  Status prepare();
  /// The thread's own signal mask, put back by unmask().
  u64 own_mask_ = 0;
  bool masked_ = false;
  void unmask();
  Expected<long> call_with_scratch(long nr, std::initializer_list<u64> args, int pointer_arg, void *buf,
                                   size_t size, bool copy_in);
};

/// Finds a `syscall` instruction in the target's [vdso] (found in its
/// `maps`), or returns 0.
u64 find_vdso_syscall(pid_t pid, const std::vector<MapEntry> &maps);

}  // namespace ckpt::writer
