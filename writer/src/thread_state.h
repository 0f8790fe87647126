// Per-thread state read through ptrace while the thread is frozen:
// registers (general, FXSAVE, the full XSAVE area), signal mask, private
// pending signals, rseq and the robust futex list.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

namespace ckpt::writer {

struct ThreadCapture {
  pid_t tid = 0;
  img::UserRegs regs{};
  std::vector<img::u8> fpregs;            ///< 512 bytes
  std::vector<img::u8> xstate;            ///< the kernel's XSAVE layout
  img::u64 sigmask = 0;
  std::vector<std::vector<img::u8>> pending;  ///< private queue, siginfo each
  img::u64 rseq_addr = 0;
  img::u32 rseq_len = 0, rseq_sig = 0;
  img::u64 robust_list = 0, robust_list_len = 0;
  std::string name;
  img::u64 utime = 0, stime = 0;           ///< clock ticks
};

img::Expected<ThreadCapture> capture_thread(pid_t pid, pid_t tid);

/// The process-wide (shared) pending signal queue, read through any thread.
img::Expected<std::vector<std::vector<img::u8>>> read_shared_pending(pid_t tid);

/// The size of this CPU's XSAVE area as the kernel exposes it
/// (CPUID 0xD: the size for the features enabled in XCR0).
img::u32 host_xsave_size();

}  // namespace ckpt::writer
