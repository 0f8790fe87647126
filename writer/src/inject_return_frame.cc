#include "inject_return_frame.h"

#include "procfs.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <elf.h>
#include <map>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

namespace ckpt::writer {

using img::Expected;
using img::make_error;
using img::u64;
using img::u8;

namespace {

// The kernel's x86-64 rt_sigreturn frame (arch/x86/include/asm/sigframe.h,
// uapi asm/sigcontext.h): rt_sigreturn reads `struct rt_sigframe` at rsp-8
// (the handler's `ret` popped pretcode), and only uc is read.
struct KernelStack {
  u64 ss_sp;
  img::u32 ss_flags, pad;
  u64 ss_size;
};
struct KernelSigcontext {
  u64 r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  u64 err, trapno, oldmask, cr2, fpstate;
  u64 reserved1[8];
};
struct KernelUcontext {
  u64 uc_flags, uc_link;
  KernelStack uc_stack;
  KernelSigcontext uc_mcontext;
  u64 uc_sigmask;  // the kernel's sigset_t: 64 signals
};
struct KernelRtSigframe {
  u64 pretcode;
  KernelUcontext uc;
  u8 info[128];
};
static_assert(sizeof(KernelSigcontext) == 256);
static_assert(sizeof(KernelRtSigframe) == 440);

constexpr u64 kUcFpXstate = 1, kUcSigcontextSs = 2, kUcStrictRestoreSs = 4;
constexpr img::u32 kFpXstateMagic1 = 0x46505853, kFpXstateMagic2 = 0x46505845;
constexpr size_t kSwReservedOffset = 464;  // struct _fpx_sw_bytes in the FXSAVE area
// No valid ss_flags value: see the comment where it is used.
constexpr img::u32 kAltstackUnchanged = 3;

// The kernel's restart codes (include/linux/errno.h, not in uapi).
constexpr long kErestartsys = 512, kErestartnointr = 513, kErestartnohand = 514, kErestartRestartblock = 516;

Expected<std::vector<u8>> read_fpstate(pid_t tid) {
  // NT_X86_XSTATE in the user ABI's XSAVE layout, the sigframe's own: its
  // sw_reserved bytes already carry FP_XSTATE_MAGIC1 and the features
  // (__copy_xstate_to_uabi_buf writes xstate_fx_sw_bytes there); the size
  // is set to what the kernel filled.
  std::vector<u8> x(16384);
  struct iovec iov = {x.data(), x.size()};
  if (ptrace(PTRACE_GETREGSET, tid, NT_X86_XSTATE, &iov) == 0 && iov.iov_len > kSwReservedOffset + 16) {
    x.resize(iov.iov_len);
    img::u32 size = img::u32(x.size()), extended = size + 4;
    std::memcpy(x.data() + kSwReservedOffset, &kFpXstateMagic1, 4);
    std::memcpy(x.data() + kSwReservedOffset + 4, &extended, 4);
    std::memcpy(x.data() + kSwReservedOffset + 16, &size, 4);
    x.resize(size + 4);
    std::memcpy(x.data() + size, &kFpXstateMagic2, 4);
    return x;
  }
  // No XSAVE: the legacy FXSAVE area, restored as such (magic1 0).
  x.assign(512, 0);
  if (ptrace(PTRACE_GETFPREGS, tid, 0, x.data()) < 0)
    return make_error("cannot read FP registers of thread %d: %s", tid, strerror(errno));
  std::memset(x.data() + kSwReservedOffset, 0, 512 - kSwReservedOffset);
  return x;
}

}  // namespace

Expected<ReturnFrame> write_return_frame(pid_t tid, const img::UserRegs &regs, u64 below) {
  auto fp = read_fpstate(tid);
  if (!fp) return fp.error();
  u64 mask = 0;
  if (ptrace(PTRACE_GETSIGMASK, tid, sizeof mask, &mask) < 0)
    return make_error("cannot read the signal mask of thread %d: %s", tid, strerror(errno));

  KernelRtSigframe f = {};
  // UC_STRICT_RESTORE_SS: ss comes back as it was, not "fixed up".
  f.uc.uc_flags = kUcFpXstate | kUcSigcontextSs | kUcStrictRestoreSs;
  // rt_sigreturn also restores the alternate signal stack from uc_stack,
  // but restore_altstack() squashes every error of do_sigaltstack() except
  // EFAULT: an invalid ss_flags (EINVAL) leaves the thread's altstack as
  // it is, which we cannot read from outside.
  f.uc.uc_stack.ss_flags = kAltstackUnchanged;
  KernelSigcontext &sc = f.uc.uc_mcontext;
  sc.r8 = regs.r8, sc.r9 = regs.r9, sc.r10 = regs.r10, sc.r11 = regs.r11;
  sc.r12 = regs.r12, sc.r13 = regs.r13, sc.r14 = regs.r14, sc.r15 = regs.r15;
  sc.rdi = regs.rdi, sc.rsi = regs.rsi, sc.rbp = regs.rbp, sc.rbx = regs.rbx;
  sc.rdx = regs.rdx, sc.rax = regs.rax, sc.rcx = regs.rcx, sc.rsp = regs.rsp, sc.rip = regs.rip;
  sc.eflags = regs.eflags;
  sc.cs = uint16_t(regs.cs), sc.ss = uint16_t(regs.ss);
  // A thread frozen inside a syscall sits before the kernel's restart step
  // (rax holds -ERESTART*, orig_rax the syscall). rt_sigreturn sets
  // orig_rax to -1, so that step would not run: apply it here as
  // arch_do_signal_or_restart() does when no handler runs.
  if (static_cast<long>(regs.orig_rax) >= 0) {
    long ret = static_cast<long>(regs.rax);
    if (ret == -kErestartsys || ret == -kErestartnointr || ret == -kErestartnohand) {
      sc.rax = regs.orig_rax;
      sc.rip = regs.rip - 2;
    } else if (ret == -kErestartRestartblock) {
      sc.rax = SYS_restart_syscall;
      sc.rip = regs.rip - 2;
    }
  }
  f.uc.uc_sigmask = mask;

  // XRSTOR needs the state 64-byte aligned; the frame sits below it.
  u64 fp_at = (below - fp->size()) & ~u64(63);
  u64 frame_at = (fp_at - sizeof f) & ~u64(15);
  sc.fpstate = fp_at;

  ReturnFrame out;
  out.rsp = frame_at + 8;
  out.start = frame_at;
  out.saved_bytes.resize(below - frame_at);
  struct iovec local = {out.saved_bytes.data(), out.saved_bytes.size()};
  struct iovec remote = {reinterpret_cast<void *>(frame_at), out.saved_bytes.size()};
  if (process_vm_readv(tid, &local, 1, &remote, 1, 0) != ssize_t(out.saved_bytes.size()))
    return make_error("cannot read the stack of thread %d at 0x%llx: %s", tid, (unsigned long long)frame_at,
                      strerror(errno));
  std::vector<u8> bytes = out.saved_bytes;
  std::memcpy(bytes.data(), &f, sizeof f);
  std::memcpy(bytes.data() + (fp_at - frame_at), fp->data(), fp->size());
  struct iovec in = {bytes.data(), bytes.size()};
  if (process_vm_writev(tid, &in, 1, &remote, 1, 0) != ssize_t(bytes.size()))
    return make_error("cannot write the stack of thread %d: %s", tid, strerror(errno));
  return out;
}

img::Status restore_stack(pid_t tid, const ReturnFrame &frame) {
  struct iovec local = {const_cast<u8 *>(frame.saved_bytes.data()), frame.saved_bytes.size()};
  struct iovec remote = {reinterpret_cast<void *>(frame.start), frame.saved_bytes.size()};
  if (process_vm_writev(tid, &local, 1, &remote, 1, 0) != ssize_t(frame.saved_bytes.size()))
    return make_error("cannot restore the stack of thread %d: %s", tid, strerror(errno));
  return {};
}

namespace {

// struct procmap_query and PROCMAP_QUERY (linux/fs.h, Linux 6.11+), spelled
// out so that older headers build.
struct ProcmapQuery {
  u64 size, query_flags, query_addr, vma_start, vma_end, vma_flags, vma_page_size, vma_offset, inode;
  uint32_t dev_major, dev_minor, vma_name_size, build_id_size;
  u64 vma_name_addr, build_id_addr;
};
static_assert(sizeof(ProcmapQuery) == 104);
constexpr unsigned long kProcmapQuery = _IOWR('f', 17, ProcmapQuery);
constexpr u64 kProcmapExecutable = 0x04;

// mov $0xf,%rax; syscall: glibc's __restore_rt (the sa_restorer of every
// handler glibc installs).
constexpr u8 kSequence[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};

// Sequences found, by process: one search per process, not per thread
// (libc is the same in all), and made before the freeze where possible
// (prime_sigreturn_sequences).
std::map<pid_t, u64> &found_sequences() {
  static std::map<pid_t, u64> found;
  return found;
}

// Whether `at` still holds the sequence in an executable mapping of pid:
// a search made before the freeze is checked at its use (the program may
// have unmapped or remapped that code since). The mapping's protection
// through PROCMAP_QUERY (one VMA, no page-table walk); a kernel without
// it reads /proc/PID/maps.
bool still_there(pid_t pid, u64 at) {
  u8 got[sizeof kSequence];
  struct iovec local = {got, sizeof got}, remote = {reinterpret_cast<void *>(at), sizeof got};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != ssize_t(sizeof got) ||
      std::memcmp(got, kSequence, sizeof got) != 0)
    return false;
  int fd = open(("/proc/" + std::to_string(pid) + "/maps").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ProcmapQuery q{};
    q.size = sizeof q;
    q.query_addr = at;
    int r = ioctl(fd, kProcmapQuery, &q);
    int err = errno;
    close(fd);
    if (r == 0) return (q.vma_flags & kProcmapExecutable) && at + sizeof kSequence <= q.vma_end;
    if (err != ENOTTY && err != EINVAL) return false;
  }
  auto maps = read_maps(pid, true);
  if (!maps) return false;
  for (const MapEntry &m : *maps)
    if (m.start <= at && at + sizeof kSequence <= m.end) return (m.prot & 4) != 0;
  return false;
}

u64 search_sequence(pid_t pid) {
  auto maps = read_maps(pid, true);  // addresses, protections and paths are all it needs
  if (!maps) return 0;
  // libc first: the sequence is there in every dynamically linked program.
  std::vector<const MapEntry *> order;
  for (const MapEntry &m : *maps)
    if ((m.prot & 4) && m.path.find("/libc.so") != std::string::npos) order.push_back(&m);
  for (const MapEntry &m : *maps)
    if ((m.prot & 4) && !m.path.empty() && m.path[0] == '/' && m.path.find("/libc.so") == std::string::npos)
      order.push_back(&m);
  for (const MapEntry *m : order) {
    if (m->end - m->start > (u64(64) << 20)) continue;
    std::vector<u8> text(m->end - m->start);
    struct iovec local = {text.data(), text.size()}, remote = {reinterpret_cast<void *>(m->start), text.size()};
    if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != ssize_t(text.size())) continue;
    auto hit = std::search(text.begin(), text.end(), std::begin(kSequence), std::end(kSequence));
    if (hit != text.end()) return found_sequences()[pid] = m->start + u64(hit - text.begin());
  }
  return 0;
}

}  // namespace

u64 find_sigreturn_sequence(pid_t pid) {
  auto &found = found_sequences();
  if (auto it = found.find(pid); it != found.end()) {
    if (still_there(pid, it->second)) return it->second;
    found.erase(it);
  }
  return search_sequence(pid);
}

void prime_sigreturn_sequences(pid_t root) {
  // The search reads libc's text (1.4 MiB: a few ms, the largest part of
  // the injected queries' time) and is the same before the freeze as in
  // it; each process of the tree as it is now (one forked later is
  // searched when first injected into).
  std::vector<pid_t> todo = {root};
  for (size_t i = 0; i < todo.size() && todo.size() < 4096; i++) {
    (void)find_sigreturn_sequence(todo[i]);
    auto kids = list_children_by_thread(todo[i]);
    if (!kids) continue;
    for (const ChildOf &c : *kids) todo.push_back(c.child);
  }
}

}  // namespace ckpt::writer
