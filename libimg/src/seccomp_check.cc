// The seccomp part of the support list (restorable.h): filter chains no
// restore can install again, whoever runs it. A pure function of the
// image, so that dump refuses such a process before anything is lost.
#include "seccomp_check.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <span>

namespace ckpt::img {

static constexpr int kCapSysAdmin = 21;

// struct sock_filter (linux/filter.h).
struct BpfInsn {
  u16 code;
  u8 jt, jf;
  u32 k;
};
static_assert(sizeof(BpfInsn) == 8);

// A filter that hands syscalls to a user-space supervisor (RET of
// SECCOMP_RET_USER_NOTIF) needs the listener fd the original was installed
// with, and whoever read it; neither is in the image.
static bool returns_user_notif(std::span<const u8> prog) {
  for (size_t i = 0; i + sizeof(BpfInsn) <= prog.size(); i += sizeof(BpfInsn)) {
    BpfInsn insn;
    std::memcpy(&insn, prog.data() + i, sizeof insn);
    constexpr u16 kBpfRetK = 0x06;
    constexpr u32 kRetUserNotif = 0x7fc00000u, kRetActionFull = 0xffff0000u;
    if (insn.code == kBpfRetK && (insn.k & kRetActionFull) == kRetUserNotif) return true;
  }
  return false;
}

// What a classic BPF seccomp program returns for one syscall (struct
// seccomp_data: nr, arch, instruction pointer, six arguments), run the way
// the kernel's interpreter does; nullopt for a program it would not have
// accepted (the kernel checked them all at install time, so only a damaged
// image gets there).
static std::optional<u32> run_filter(std::span<const u8> prog, const u8 (&data)[64]) {
  size_t n = prog.size() / sizeof(BpfInsn);
  u32 a = 0, x = 0, mem[16] = {};
  for (size_t pc = 0; pc < n; pc++) {
    BpfInsn in;
    std::memcpy(&in, prog.data() + pc * sizeof in, sizeof in);
    u32 src = (in.code & 0x08) ? x : in.k;
    switch (in.code & 0x07) {
      case 0x00:    // BPF_LD
      case 0x01: {  // BPF_LDX
        u32 v;
        switch (in.code & 0xe0) {
          case 0x00: v = in.k; break;  // BPF_IMM
          case 0x20:                   // BPF_ABS (32-bit words only)
            if (in.k > 60 || in.k % 4) return std::nullopt;
            std::memcpy(&v, data + in.k, 4);
            break;
          case 0x60:  // BPF_MEM
            if (in.k >= 16) return std::nullopt;
            v = mem[in.k];
            break;
          case 0x80: v = 64; break;  // BPF_LEN
          default: return std::nullopt;
        }
        ((in.code & 0x07) == 0x00 ? a : x) = v;
        break;
      }
      case 0x02:  // BPF_ST
      case 0x03:  // BPF_STX
        if (in.k >= 16) return std::nullopt;
        mem[in.k] = (in.code & 0x07) == 0x02 ? a : x;
        break;
      case 0x04:  // BPF_ALU
        switch (in.code & 0xf0) {
          case 0x00: a += src; break;
          case 0x10: a -= src; break;
          case 0x20: a *= src; break;
          case 0x30: a = src ? a / src : 0; break;
          case 0x40: a |= src; break;
          case 0x50: a &= src; break;
          case 0x60: a = src < 32 ? a << src : 0; break;
          case 0x70: a = src < 32 ? a >> src : 0; break;
          case 0x80: a = -a; break;
          case 0x90: a = src ? a % src : 0; break;
          case 0xa0: a ^= src; break;
          default: return std::nullopt;
        }
        break;
      case 0x05: {  // BPF_JMP: forward only
        bool taken;
        switch (in.code & 0xf0) {
          case 0x00: pc += in.k; continue;  // BPF_JA
          case 0x10: taken = a == src; break;
          case 0x20: taken = a > src; break;
          case 0x30: taken = a >= src; break;
          case 0x40: taken = (a & src) != 0; break;
          default: return std::nullopt;
        }
        pc += taken ? in.jt : in.jf;
        break;
      }
      case 0x06:  // BPF_RET
        return (in.code & 0x18) == 0x10 ? a : in.k;
      case 0x07:  // BPF_MISC: TAX, TXA
        if (in.code & 0x80) a = x;
        else x = a;
        break;
    }
  }
  return std::nullopt;
}

// The restorer's very last call in each thread is rt_sigreturn, made after
// the thread's filters are in place: they must let it through (the kernel's
// verdict over a chain is the most restrictive one; ALLOW and LOG let it
// run). The instruction pointer and arguments are the restorer's and not
// known here; filters almost never look at them for rt_sigreturn.
static bool allows_rt_sigreturn(const CkptView &v, const std::vector<const SeccompFilterRecord *> &filters) {
  u8 data[64] = {};
  u32 nr = 15, arch = 0xc000003eu;  // __NR_rt_sigreturn, AUDIT_ARCH_X86_64
  std::memcpy(data, &nr, 4);
  std::memcpy(data + 4, &arch, 4);
  for (const SeccompFilterRecord *f : filters) {
    auto prog = v.seccomp_filters.blob(f->program);
    if (!prog) return false;
    auto ret = run_filter(*prog, data);
    constexpr u32 kRetLog = 0x7ffc0000u;
    if (!ret || static_cast<i32>(*ret & 0xffff0000u) < static_cast<i32>(kRetLog)) return false;
  }
  return true;
}

std::vector<Unsupported> unsupported_seccomp(const CkptView &v) {
  std::vector<Unsupported> out;
  for (const ThreadRecord &t : v.threads.records) {
    if (!(t.flags & kThreadPrivileges)) continue;  // an image from before format 1.1
    auto offend = [&](std::string what) { out.push_back({t.pid, "thread " + std::to_string(t.tid) + ": " + what}); };
    if (t.cap_ambient & ~(t.cap_permitted & t.cap_inheritable))
      offend("ambient capabilities outside its permitted and inheritable sets");
    if (t.seccomp_mode != static_cast<u32>(SeccompMode::Filter)) continue;
    std::vector<const SeccompFilterRecord *> filters;
    for (const SeccompFilterRecord &f : v.seccomp_filters.records)
      if (f.tid == t.tid) filters.push_back(&f);
    std::sort(filters.begin(), filters.end(),
              [](const SeccompFilterRecord *a, const SeccompFilterRecord *b) { return a->position < b->position; });
    // seccomp(SECCOMP_SET_MODE_FILTER) needs no_new_privs or CAP_SYS_ADMIN
    // in the effective set: the restorer installs the filters last, with
    // the thread's final capabilities.
    if (!(t.flags & kThreadNoNewPrivs) && !(t.cap_effective & (u64(1) << kCapSysAdmin)))
      offend("seccomp filters without no_new_privs or CAP_SYS_ADMIN, which the kernel would not let it install again");
    for (size_t i = 0; i < filters.size(); i++) {
      auto prog = v.seccomp_filters.blob(filters[i]->program);
      if (prog && returns_user_notif(*prog))
        offend("seccomp filter " + std::to_string(i) +
               " passing syscalls to a user-space listener (SECCOMP_RET_USER_NOTIF)");
    }
    if (!allows_rt_sigreturn(v, filters)) offend("seccomp filters that refuse rt_sigreturn, which restore needs to start it");
  }
  return out;
}

}  // namespace ckpt::img
