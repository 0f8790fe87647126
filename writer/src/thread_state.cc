#include "thread_state.h"

#include <cerrno>
#include <csignal>
#include <cpuid.h>
#include <cstring>
#include <elf.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>

#include <ckpt/img/xstate.h>

#include "procfs.h"

// glibc 2.36 names the rseq request's result with leading underscores.
using RseqConfiguration = __ptrace_rseq_configuration;

namespace ckpt::writer {

using img::make_error;

img::u32 host_xsave_size() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(0xd, 0, &a, &b, &c, &d)) return 0;
  return b;  // EBX: size for the features currently enabled in XCR0
}

static img::Expected<std::vector<std::vector<img::u8>>> peek_siginfo(pid_t tid, bool shared) {
  std::vector<std::vector<img::u8>> out;
  // PTRACE_PEEKSIGINFO copies without dequeuing; page through the queue.
  struct {
    uint64_t off;
    uint32_t flags;
    int32_t nr;
  } args{0, shared ? 1u : 0u, 32};
  for (;;) {
    siginfo_t buf[32];
    long n = ptrace(PTRACE_PEEKSIGINFO, tid, &args, buf);
    if (n < 0) return make_error("PTRACE_PEEKSIGINFO(%d): %s", tid, strerror(errno));
    for (long i = 0; i < n; i++) {
      std::vector<img::u8> si(sizeof(siginfo_t));
      std::memcpy(si.data(), &buf[i], sizeof(siginfo_t));
      out.push_back(std::move(si));
    }
    if (n < 32) return out;
    args.off += n;
    if (args.off > 1 << 20) return make_error("thread %d has an implausibly long signal queue", tid);
  }
}

img::Expected<std::vector<std::vector<img::u8>>> read_shared_pending(pid_t tid) { return peek_siginfo(tid, true); }

img::Expected<ThreadCapture> capture_thread(pid_t pid, pid_t tid) {
  ThreadCapture t;
  t.tid = tid;
  static_assert(sizeof(img::UserRegs) == sizeof(user_regs_struct));
  if (ptrace(PTRACE_GETREGS, tid, 0, &t.regs) < 0)
    return make_error("cannot read registers of thread %d: %s", tid, strerror(errno));
  t.fpregs.resize(img::kFpregsetSize);
  if (ptrace(PTRACE_GETFPREGS, tid, 0, t.fpregs.data()) < 0)
    return make_error("cannot read FP registers of thread %d: %s", tid, strerror(errno));
  // NT_X86_XSTATE through GETREGSET: the kernel trims iov_len to what it
  // filled, the size of its user-ABI XSAVE buffer.
  img::u32 size = host_xsave_size();
  if (size) {
    t.xstate.resize(size);
    struct iovec iov = {t.xstate.data(), t.xstate.size()};
    if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) < 0)
      return make_error("cannot read the XSAVE state of thread %d: %s", tid, strerror(errno));
    t.xstate.resize(iov.iov_len);
    img::u64 xcr0 = 0;
    if (t.xstate.size() >= img::kXstateXcr0Offset + 8) std::memcpy(&xcr0, t.xstate.data() + img::kXstateXcr0Offset, 8);
    auto canonical = img::convert_xsave(t.xstate, xcr0, img::cpu_xsave_layout(), img::intel_xsave_layout());
    if (!canonical) return canonical.error().context("thread " + std::to_string(tid));
    t.xstate = canonical.take();
  }
  if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(t.sigmask), &t.sigmask) < 0)
    return make_error("cannot read the signal mask of thread %d: %s", tid, strerror(errno));
  auto pending = peek_siginfo(tid, false);
  if (!pending) return pending.error();
  t.pending = pending.take();
  RseqConfiguration rseq{};
  if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof rseq, &rseq) > 0) {
    t.rseq_addr = rseq.rseq_abi_pointer;
    t.rseq_len = rseq.rseq_abi_size;
    t.rseq_sig = rseq.signature;
  }
  auto robust = read_robust_list(tid);
  if (!robust) return robust.error();
  t.robust_list = robust->head;
  t.robust_list_len = robust->len;
  auto comm = read_file("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/comm");
  if (!comm) return comm.error();
  t.name = *comm;
  if (!t.name.empty() && t.name.back() == '\n') t.name.pop_back();
  auto stat = read_stat(pid, tid);
  if (!stat) return stat.error();
  t.utime = stat->utime;
  t.stime = stat->stime;
  return t;
}

}  // namespace ckpt::writer
