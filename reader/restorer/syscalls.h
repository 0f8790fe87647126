/* What the restorer's files share (restorer.c, map_memory.c,
 * privileges.c): syscalls without libc, the kernel's constants it uses,
 * and failing. Freestanding: no libc header is available here. */
#ifndef CKPT_RESTORER_SYSCALLS_H
#define CKPT_RESTORER_SYSCALLS_H

#include "abi.h"

typedef unsigned long ulong;

/* x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
enum {
  NR_write = 1, NR_close = 3, NR_ioctl = 16, NR_mmap = 9, NR_mprotect = 10, NR_munmap = 11,
  NR_rt_sigreturn = 15, NR_pread64 = 17, NR_mremap = 25, NR_madvise = 28, NR_shmat = 30,
  NR_getpid = 39, NR_exit = 60, NR_rt_sigqueueinfo = 129, NR_prctl = 157,
  NR_arch_prctl = 158, NR_futex = 202, NR_set_tid_address = 218,
  NR_exit_group = 231, NR_set_robust_list = 273, NR_rt_tgsigqueueinfo = 297,
  NR_rseq = 334, NR_clone3 = 435, NR_kill = 62, NR_setgroups = 116, NR_setresuid = 117,
  NR_setresgid = 119, NR_capset = 126, NR_seccomp = 317, NR_mlock2 = 325,
  NR_mlockall = 151, NR_getppid = 110, NR_fcntl = 72, NR_process_vm_writev = 311,
  NR_fadvise64 = 221, NR_openat = 257, NR_pwrite64 = 18, NR_tgkill = 234, NR_sched_yield = 24,
  NR_nanosleep = 35,
};

static inline long sys6(long nr, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define sys1(n, a) sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys5(n, a, b, c, d, e) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

#define PROT_WRITE 2
#define PROT_READ 1
#define PROT_EXEC 4
#define SHM_RDONLY 010000
#define SHM_EXEC 0100000
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define MAP_SHARED 1
#define MAP_PRIVATE 2
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_HUGETLB 0x40000
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define MADV_DONTNEED 4
#define MADV_DONTFORK 10
#define MADV_DONTDUMP 16
#define MADV_HUGEPAGE 14
#define MADV_NOHUGEPAGE 15
#define MADV_WIPEONFORK 18
#define MADV_POPULATE_WRITE 23
#define POSIX_FADV_SEQUENTIAL 2
#define MADV_GUARD_INSTALL 102
#define MLOCK_ONFAULT 1
#define UFFDIO_REGISTER 0xc020aa00ul /* _IOWR(0xAA, 0x00, struct uffdio_register) */
#define UFFDIO_REGISTER_MODE_MISSING 1
#define ENOMEM_NR 12
#define AT_FDCWD_NR (-100)
#define O_RDWR_NR 02
#define O_CLOEXEC_NR 02000000
#define PR_SET_MM 35
#define PR_SET_NAME 15
#define PR_SET_PDEATHSIG 1
#define PR_SET_DUMPABLE 4
#define PR_SET_MM_MAP 14
#define PR_SET_KEEPCAPS 8
#define PR_CAPBSET_DROP 24
#define PR_GET_SECUREBITS 27
#define PR_SET_SECUREBITS 28
#define PR_SET_NO_NEW_PRIVS 38
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#define SECBIT_KEEP_CAPS 0x10
#define LINUX_CAPABILITY_VERSION_3 0x20080522
#define SECCOMP_SET_MODE_STRICT 0
#define SECCOMP_SET_MODE_FILTER 1
#define EINVAL_NR 22
#define ENOSYS_NR 38
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define ESRCH_NR 3
#define EEXIST_NR 17
#define TASK_SIZE_4LEVEL 0x7ffffffff000ul

/* Defined in map_memory.c (-fno-builtin: the compiler emits calls). */
void *memcpy(void *dst, const void *src, unsigned long n);
void *memset(void *dst, int c, unsigned long n);

/* Reports the failed stage to imgtool and dies: after the unmapping there
 * is nothing to return to. */
void fail(const struct rs_args *a, int stage, long err) __attribute__((noreturn));

/* RS_ASSERT(a, cond): the restorer's CKPT_ASSERT, on in every build, for
 * invariants of the argument block imgtool laid out. A failure is reported
 * like a failed stage (RS_INTERNAL), with the file, line and condition
 * (verdict.cc prints them). */
void fail_assert(const struct rs_args *a, const char *file, unsigned line, const char *cond)
    __attribute__((noreturn));
#define RS_ASSERT(a, cond) \
  do {                     \
    if (!(cond)) fail_assert((a), __FILE_NAME__, __LINE__, #cond); \
  } while (0)

/* map_memory.c: the old address space goes, the image's comes. */
void unmap_all_but(const struct rs_args *a);
void move_special_mappings(const struct rs_args *a);
void map_memory(const struct rs_args *a);

/* pread of the image until len bytes are at addr; fails the restore
 * (RS_FILL) on an error or a short file. */
void rs_read_fully(const struct rs_args *a, ulong addr, ulong len, ulong off);

/* clone3 with `ca`; the child runs fn(x, y) on ca's stack and must never
 * return. Returns the child's tid or -errno, as clone3 does. */
struct clone_args_v2 {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
      cgroup;
};
long rs_clone3(struct clone_args_v2 *ca, void (*fn)(void *, void *), void *x, void *y);

/* fill_pair.c: two fillers share the fills: the long ones as jobs (decision
 * 248), the short ones through the queue (decision 267). */
void rs_pair_start(const struct rs_args *a);
int rs_pair_active(const struct rs_args *a);
void rs_pair_begin(const struct rs_args *a, ulong addr, ulong len, ulong file_offset, int map_private);
int rs_pair_next(const struct rs_args *a, ulong *addr, ulong *len);
void rs_pair_end(const struct rs_args *a);
void rs_pair_stop(const struct rs_args *a);
void rs_queue_mark(const struct rs_args *a, uint32_t first, uint32_t n, int leaders, int map_private);
void rs_queue_open(const struct rs_args *a);
int rs_queue_leaders(const struct rs_args *a, uint32_t f);
void rs_queue_wait(const struct rs_args *a, uint32_t f);

/* xxh3_avx2.c: XXH3_64bits_update on AVX2 (state: an XXH3_state_t). */
void rs_xxh3_update_avx2(void *state, const void *p, unsigned long n);

/* privileges.c: a thread's credentials, capabilities and no_new_privs. */
void set_privileges(const struct rs_args *a, const struct rs_thread *t);

/* clone flags, for the restorer's threads (restorer.c, fill_pair.c). */
#define CLONE_VM 0x100
#define CLONE_FS 0x200
#define CLONE_FILES 0x400
#define CLONE_SIGHAND 0x800
#define CLONE_THREAD 0x10000
#define CLONE_SYSVSEM 0x40000
#define CLONE_PARENT_SETTID 0x100000
#define CLONE_CHILD_CLEARTID 0x200000

#endif
