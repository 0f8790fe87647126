// The rt_sigframe each restored thread returns through (sigframe.h).
#include "sigframe.h"

#include <cstring>
#include <vector>

#include <ckpt/img/xstate.h>

namespace ckpt::reader {

using namespace img;

// Fills the rt_sigframe a thread returns through: registers, signal mask,
// alternate stack and XSAVE area converted to this CPU's layout.
Status build_sigframe(ArgArena &arena, const CoreThread &ct, const ThreadRecord &tr, rs_thread &out) {
  rs_sigframe *frame = arena.alloc<rs_sigframe>(1, 64);
  if (!frame) return make_error("restorer argument area too small");
  std::memset(frame, 0, sizeof *frame);
  rs_ucontext &uc = frame->uc;
  UserRegs r = ct.prstatus.pr_reg;
  // The kernel restarts an interrupted syscall on the way back to user
  // mode; we are that way back. A restart_block syscall cannot be resumed
  // in a new task (its restart_block is gone), so it is issued afresh.
  auto restart = static_cast<SyscallRestart>(tr.restart);
  if (restart == SyscallRestart::Restart || restart == SyscallRestart::RestartBlock) {
    r.rip = tr.restart_rip;
    r.rax = restart == SyscallRestart::Restart ? tr.restart_rax : static_cast<u64>(tr.syscall_nr);
  }
  uc.uc_flags = RS_UC_FP_XSTATE | RS_UC_SIGCONTEXT_SS | RS_UC_STRICT_RESTORE_SS;
  // uc_stack: the thread's alternate signal stack (rt_sigreturn sets it).
  uc.uc_stack.ss_sp = tr.altstack_sp;
  uc.uc_stack.ss_size = tr.altstack_size;
  uc.uc_stack.ss_flags = tr.altstack_size ? static_cast<i32>(tr.altstack_flags & ~1u) : RS_SS_DISABLE;
  rs_sigcontext &sc = uc.uc_mcontext;
  sc.r8 = r.r8; sc.r9 = r.r9; sc.r10 = r.r10; sc.r11 = r.r11; sc.r12 = r.r12; sc.r13 = r.r13; sc.r14 = r.r14;
  sc.r15 = r.r15; sc.rdi = r.rdi; sc.rsi = r.rsi; sc.rbp = r.rbp; sc.rbx = r.rbx; sc.rdx = r.rdx; sc.rax = r.rax;
  sc.rcx = r.rcx; sc.rsp = r.rsp; sc.rip = r.rip; sc.eflags = r.eflags;
  sc.cs = static_cast<u16>(r.cs);
  sc.gs = static_cast<u16>(r.gs);
  sc.fs = static_cast<u16>(r.fs);
  sc.ss = static_cast<u16>(r.ss);
  uc.uc_sigmask = tr.sigmask;
  // XSAVE area, 64-aligned, in this CPU's layout with the software bytes
  // that tell rt_sigreturn to XRSTOR it.
  u64 xcr0 = 0;
  std::vector<u8> area;
  if (ct.xstate.size() >= kXstateXcr0Offset + 8) {
    std::memcpy(&xcr0, ct.xstate.data() + kXstateXcr0Offset, 8);
    auto host = convert_xsave(ct.xstate, xcr0, intel_xsave_layout(), cpu_xsave_layout());
    if (!host) return host.error().context("thread " + std::to_string(tr.tid));
    area = host.take();
  } else {
    area.assign(ct.fpregs.begin(), ct.fpregs.end());
    area.resize(512, 0);
  }
  u8 *fp = arena.alloc<u8>(area.size() + sizeof(u32), 64);
  if (!fp) return make_error("restorer argument area too small");
  std::memcpy(fp, area.data(), area.size());
  if (xcr0) {
    u32 size = static_cast<u32>(area.size());
    rs_fpx_sw_bytes sw{RS_FP_XSTATE_MAGIC1, size + 4, xcr0, size, {}};
    std::memcpy(fp + RS_FPX_SW_BYTES_OFFSET, &sw, sizeof sw);
    u32 magic2 = RS_FP_XSTATE_MAGIC2;
    std::memcpy(fp + size, &magic2, sizeof magic2);
  }
  sc.fpstate = reinterpret_cast<u64>(fp);
  out.sigframe = reinterpret_cast<u64>(frame);
  return {};
}

}  // namespace ckpt::reader
