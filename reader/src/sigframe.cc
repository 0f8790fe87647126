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
  u8 *frame = arena.alloc<u8>(8 + 304 + 128, 64);
  if (!frame) return make_error("restorer argument area too small");
  std::memset(frame, 0, 8 + 304 + 128);
  u8 *uc = frame + 8;
  UserRegs r = ct.prstatus.pr_reg;
  // The kernel restarts an interrupted syscall on the way back to user
  // mode; we are that way back. A restart_block syscall cannot be resumed
  // in a new task (its restart_block is gone), so it is issued afresh.
  auto restart = static_cast<SyscallRestart>(tr.restart);
  if (restart == SyscallRestart::Restart || restart == SyscallRestart::RestartBlock) {
    r.rip = tr.restart_rip;
    r.rax = restart == SyscallRestart::Restart ? tr.restart_rax : static_cast<u64>(tr.syscall_nr);
  }
  u64 uc_flags = 0x1 | 0x2 | 0x4;  // UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
  std::memcpy(uc, &uc_flags, 8);
  // uc_stack: the thread's alternate signal stack (rt_sigreturn sets it).
  u64 ss_sp = tr.altstack_sp, ss_size = tr.altstack_size;
  i32 ss_flags = ss_size ? static_cast<i32>(tr.altstack_flags & ~1u) : 2 /* SS_DISABLE */;
  std::memcpy(uc + 16, &ss_sp, 8);
  std::memcpy(uc + 24, &ss_flags, 4);
  std::memcpy(uc + 32, &ss_size, 8);
  // struct sigcontext at uc + 40.
  u64 sc[32] = {};
  sc[0] = r.r8; sc[1] = r.r9; sc[2] = r.r10; sc[3] = r.r11; sc[4] = r.r12; sc[5] = r.r13; sc[6] = r.r14;
  sc[7] = r.r15; sc[8] = r.rdi; sc[9] = r.rsi; sc[10] = r.rbp; sc[11] = r.rbx; sc[12] = r.rdx; sc[13] = r.rax;
  sc[14] = r.rcx; sc[15] = r.rsp; sc[16] = r.rip; sc[17] = r.eflags;
  u16 segs[4] = {static_cast<u16>(r.cs), static_cast<u16>(r.gs), static_cast<u16>(r.fs), static_cast<u16>(r.ss)};
  std::memcpy(&sc[18], segs, 8);
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
  u8 *fp = arena.alloc<u8>(area.size() + 8, 64);
  if (!fp) return make_error("restorer argument area too small");
  std::memcpy(fp, area.data(), area.size());
  if (xcr0) {
    u32 size = static_cast<u32>(area.size());
    struct {
      u32 magic1, extended_size;
      u64 xfeatures;
      u32 xstate_size;
      u32 pad[7];
    } sw{0x46505853u, size + 4, xcr0, size, {}};
    std::memcpy(fp + 464, &sw, sizeof sw);
    u32 magic2 = 0x46505845u;
    std::memcpy(fp + size, &magic2, 4);
  }
  sc[23] = reinterpret_cast<u64>(fp);
  std::memcpy(uc + 40, sc, 256);
  std::memcpy(uc + 40 + 256, &tr.sigmask, 8);
  out.sigframe = reinterpret_cast<u64>(frame);
  return {};
}

}  // namespace ckpt::reader
