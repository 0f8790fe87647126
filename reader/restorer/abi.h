/* The contract between imgtool restore (C++) and the restorer blob
 * (freestanding C). The C++ side lays out one RestoreArgs block, with every
 * array it points to, inside the restorer's own region, which survives the
 * unmapping of everything else. Pointers are absolute addresses. */
#ifndef CKPT_RESTORER_ABI_H
#define CKPT_RESTORER_ABI_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_RS_MAGIC 0x434b5052u /* "CKPR" */

/* One address range to unmap before the image's mappings go in. */
struct rs_range {
  uint64_t start, end;
};

/* One mapping of the image, in address order. */
struct rs_vma {
  uint64_t start, end;
  uint64_t pgoff;          /* for file mappings: offset in the file */
  uint32_t prot;           /* final PROT_* */
  uint32_t map_flags;      /* MAP_PRIVATE / MAP_SHARED, MAP_GROWSDOWN, ... */
  int32_t fd;              /* file to map, or -1 for anonymous memory */
  uint32_t first_fill, nfill; /* rs_fill entries that overlay it */
  uint32_t madvise;        /* RS_MADV_* bits to apply at the end */
  uint32_t lock;           /* RS_LOCK_* : mlock2 once mapped and filled */
  uint32_t uffd;           /* lazy: register on rs_args.uffd instead of filling */
  uint32_t sysv_shm;       /* 1: shmat(shmid) here instead of mmap (no fills: the segment holds the bytes) */
  int32_t shmid;
  uint32_t account;        /* RS_ACCOUNT_*: whether the private mapping ends charged to commit (VM_ACCOUNT) */
};

/* rs_vma.account (decision 237). VM_ACCOUNT comes from a private
 * mapping's history: mmap charges it when writable, mprotect when it first
 * gains write, and dropping write takes it back only from an anonymous
 * mapping never faulted in. */
#define RS_ACCOUNT_AS_MAPPED 0u  /* an image before format minor 9: writable while filled, as before */
#define RS_ACCOUNT_YES 1u        /* mapped writable (charged), then given its protection */
#define RS_ACCOUNT_NO 2u         /* never writable: a read-only one is filled through /proc/self/mem */

#define RS_MADV_DONTDUMP 1u
#define RS_MADV_HUGEPAGE 2u
#define RS_MADV_NOHUGEPAGE 4u
#define RS_MADV_DONTFORK 8u
#define RS_MADV_WIPEONFORK 16u

#define RS_LOCK 1u               /* VM_LOCKED: mlock2 */
#define RS_LOCK_ONFAULT 2u       /* VM_LOCKONFAULT: mlock2(MLOCK_ONFAULT) */

/* Bytes of the image file that go to [addr, addr+len). */
struct rs_fill {
  uint64_t addr, len;
  uint64_t file_offset;    /* in the image file; page-aligned */
  uint32_t check;          /* 1 + the rs_check its bytes are part of, or 0 */
  uint32_t queued;         /* zero from imgtool; the restorer's: RS_QUEUE_* and slices in place (fill_pair.c) */
};

/* A segment checksum the restorer checks as it reads the bytes in
 * (decision 174): the xxh3 of [file_offset, file_offset + size) of the
 * image file, which the fills naming it read in file order, one right
 * after the other. The other fields only make the failure's line, the
 * same as `imgtool verify` gives: "checksum mismatch in segment PHDR
 * (bytes CORE_OFFSET..CORE_OFFSET+SIZE)". */
struct rs_check {
  uint64_t file_offset, size;
  uint64_t xxh3;
  uint64_t core_offset;    /* the segment's offset in its own core */
  uint32_t phdr;           /* its program header index */
  uint32_t pad;
};

/* A kernel-provided mapping ([vdso], [vvar], [vvar_vclock]) to move. */
struct rs_move {
  uint64_t from, to, len;
};

/* One seccomp filter to install: the first 16 bytes are a struct
 * sock_fprog (linux/filter.h) that seccomp(2) takes as is. */
struct rs_filter {
  uint16_t len;            /* instructions */
  uint16_t pad0[3];
  uint64_t insns;          /* struct sock_filter[len] */
  uint32_t flags;          /* SECCOMP_FILTER_FLAG_* to install it with */
  uint32_t pad1;
};

/* RS_PRIV_* bits of rs_thread.priv. */
#define RS_PRIV_CAPS 1u        /* set the capability sets and securebits below */
#define RS_PRIV_NO_NEW_PRIVS 2u
#define RS_SECCOMP_STRICT 1u   /* rs_thread.seccomp_mode */
#define RS_SECCOMP_FILTER 2u

/* One thread: everything it sets on itself before rt_sigreturn. */
struct rs_thread {
  int32_t tid;
  uint32_t pad0;
  uint64_t fs_base, gs_base;
  uint64_t robust_list, robust_list_len;
  uint64_t clear_child_tid;
  uint64_t rseq_addr;
  uint32_t rseq_len, rseq_sig;
  uint64_t altstack_sp, altstack_size;
  uint32_t altstack_flags;
  uint32_t pad1;
  uint64_t sigframe;       /* address of a ready struct rs_sigframe */
  uint64_t stack_top;      /* restorer stack for this thread */
  char comm[16];           /* thread name, NUL-terminated */
  /* Privileges, set after the ids (see privileges.c for the order). */
  uint32_t priv;           /* RS_PRIV_* */
  uint32_t securebits;
  uint64_t cap_effective, cap_permitted, cap_inheritable, cap_ambient;
  uint64_t cap_bounding_drop; /* bits to drop from the bounding set */
  uint32_t seccomp_mode;   /* 0, RS_SECCOMP_STRICT or RS_SECCOMP_FILTER */
  uint32_t nfilter;
  struct rs_filter *filter; /* oldest first: the install order */
};

/* The frame rt_sigreturn(2) reads on x86-64 (arch/x86/include/asm/
 * sigframe.h, struct rt_sigframe; uapi asm/sigcontext.h, asm/ucontext.h):
 * the kernel pops pretcode's 8 bytes first, so rsp points at uc when the
 * restorer issues rt_sigreturn (rs_thread.sigframe + 8). */
struct rs_sigcontext {     /* struct sigcontext (64-bit) */
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
  uint16_t cs, gs, fs, ss;
  uint64_t err, trapno, oldmask, cr2;
  uint64_t fpstate;        /* address of the XSAVE area, 64-aligned */
  uint64_t reserved1[8];
};

struct rs_stack {          /* stack_t */
  uint64_t ss_sp;
  int32_t ss_flags;
  uint32_t pad;
  uint64_t ss_size;
};

#define RS_UC_FP_XSTATE 0x1u
#define RS_UC_SIGCONTEXT_SS 0x2u
#define RS_UC_STRICT_RESTORE_SS 0x4u
#define RS_SS_DISABLE 2

struct rs_ucontext {       /* struct ucontext */
  uint64_t uc_flags;       /* RS_UC_* */
  uint64_t uc_link;
  struct rs_stack uc_stack; /* the alternate signal stack rt_sigreturn sets */
  struct rs_sigcontext uc_mcontext;
  uint64_t uc_sigmask;
};

struct rs_sigframe {       /* struct rt_sigframe */
  uint64_t pretcode;
  struct rs_ucontext uc;
  uint8_t info[128];       /* siginfo_t, unused by rt_sigreturn */
};

/* struct _fpx_sw_bytes: the software bytes at offset 464 of the FXSAVE
 * image that tell rt_sigreturn the area is an XSAVE area (FP_XSTATE_MAGIC1),
 * followed by FP_XSTATE_MAGIC2 right after the xstate_size bytes. */
#define RS_FP_XSTATE_MAGIC1 0x46505853u
#define RS_FP_XSTATE_MAGIC2 0x46505845u
#define RS_FPX_SW_BYTES_OFFSET 464
struct rs_fpx_sw_bytes {
  uint32_t magic1, extended_size;
  uint64_t xfeatures;
  uint32_t xstate_size;
  uint32_t padding[7];
};

/* The kernel fixes these layouts (rt_sigreturn reads them at these
 * offsets); both the C++ that fills a frame and the restorer check them. */
#ifdef __cplusplus
#define RS_STATIC_ASSERT static_assert
#else
#define RS_STATIC_ASSERT _Static_assert
#endif
RS_STATIC_ASSERT(sizeof(struct rs_sigcontext) == 256, "struct sigcontext is 256 bytes");
RS_STATIC_ASSERT(__builtin_offsetof(struct rs_sigcontext, rip) == 128, "sigcontext.rip at 128");
RS_STATIC_ASSERT(__builtin_offsetof(struct rs_sigcontext, cs) == 144, "sigcontext.cs at 144");
RS_STATIC_ASSERT(__builtin_offsetof(struct rs_sigcontext, fpstate) == 184, "sigcontext.fpstate at 184");
RS_STATIC_ASSERT(sizeof(struct rs_stack) == 24, "stack_t is 24 bytes");
RS_STATIC_ASSERT(sizeof(struct rs_ucontext) == 304, "struct ucontext is 304 bytes");
RS_STATIC_ASSERT(__builtin_offsetof(struct rs_ucontext, uc_stack) == 16, "ucontext.uc_stack at 16");
RS_STATIC_ASSERT(__builtin_offsetof(struct rs_ucontext, uc_mcontext) == 40, "ucontext.uc_mcontext at 40");
RS_STATIC_ASSERT(__builtin_offsetof(struct rs_ucontext, uc_sigmask) == 296, "ucontext.uc_sigmask at 296");
RS_STATIC_ASSERT(sizeof(struct rs_sigframe) == 440, "struct rt_sigframe is 440 bytes");
RS_STATIC_ASSERT(__builtin_offsetof(struct rs_sigframe, uc) == 8, "rt_sigframe.uc at 8, after pretcode");
RS_STATIC_ASSERT(sizeof(struct rs_fpx_sw_bytes) == 48, "struct _fpx_sw_bytes is 48 bytes");
#undef RS_STATIC_ASSERT

/* A signal to queue once all threads exist (tid 0: process-wide). */
struct rs_signal {
  int32_t tid;
  int32_t signo;
  uint8_t siginfo[128];
};

/* Seals of a memfd (fd, in the process's own table) that only the
 * restorer may add, after the memory is mapped: F_SEAL_FUTURE_WRITE
 * refuses a writable shared mapping made after it, not one made before. */
struct rs_seal {
  int32_t fd;
  uint32_t seals;
};

/* struct prctl_mm_map (include/uapi/linux/prctl.h). */
struct rs_mm_map {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint64_t auxv;
  uint32_t auxv_size;
  uint32_t exe_fd;
};

struct rs_args {
  uint32_t magic;
  int32_t image_fd;        /* closed before the threads run */
  int32_t status_fd;       /* pipe to imgtool: a byte on failure, EOF on success */
  uint32_t lazy;           /* a lazy restore (rs_vma.uffd says which VMAs) */
  uint64_t self_start, self_end; /* the restorer region itself */
  struct rs_range *unmap;  uint32_t nunmap;
  uint32_t nvma;           struct rs_vma *vma;
  struct rs_fill *fill;    uint32_t nfill;
  uint32_t nmove;          struct rs_move *move;
  uint64_t move_scratch;   /* a free range as large as all moves together */
  struct rs_mm_map mm;
  int32_t *close_fds;      uint32_t nclose;
  uint32_t nthread;        struct rs_thread *thread; /* [0] is the leader */
  struct rs_signal *signal; uint32_t nsignal;
  uint32_t threads_started; /* futex word: threads done with setup */
  uint32_t stopped;        /* the process was job-control stopped (imgtool stops it again) */
  uint32_t threads_go;     /* futex word: set by imgtool, through ptrace, at the handover */
  uint32_t set_creds;      /* set the ids below on every thread, last of all */
  uint32_t uid[3], gid[3]; /* real, effective, saved */
  uint32_t ngroups;
  uint32_t *groups;
  uint32_t dumpable;       /* PR_SET_DUMPABLE after the ids change */
  int32_t uffd;            /* lazy: the userfaultfd imgtool's helper serves, or -1 */
  uint64_t cap_permitted_now; /* imgtool's permitted set, which every thread starts with */
  uint32_t memory_ready;   /* futex word: the image's memory is in place */
  uint32_t mlockall_flags; /* MCL_FUTURE [| MCL_ONFAULT] once memory is in place, or 0 */
  struct rs_range *guard;  uint32_t nguard; /* MADV_GUARD_INSTALL once memory is in place */
  uint32_t pad3;
  struct rs_check *check;  uint32_t ncheck; /* checked while the fills read */
  uint32_t pad4;
  const char *check_context; /* NUL-terminated: what a mismatch's line starts with ("" or "process P (...): ") */
  uint8_t *scratch;        /* scratch_len bytes the checked fills are hashed in */
  uint64_t scratch_len;
  struct rs_seal *late_seal; uint32_t nlate_seal; /* memfd seals added once memory is mapped */
  uint32_t fill_flags;     /* RS_FILL_*: how checked fills are placed and hashed */
  uint32_t fillers;        /* 2: a second filler thread shares the long fills (decision 248); else 1 */
  uint64_t pair_min;       /* with two fillers: the shortest fill they share */
  uint64_t filler_stack_top; /* the second filler's stack, in the region */
  struct rs_fill_pair {    /* the two fillers' shared words (fill_pair.c; zero from imgtool) */
    uint32_t job;          /* futex: bumped by the leader for each shared fill; RS_PAIR_EXIT: leave */
    uint32_t job_done;     /* futex: the last job the second filler finished */
    int32_t helper_tid;    /* its tid from clone3; zeroed by the kernel as it exits (CLONE_CHILD_CLEARTID) */
    uint32_t hashed;       /* futex: slices of the job the leader has hashed, in order */
    uint32_t next;         /* the next slice of the job to take */
    uint32_t nslice;
    uint32_t leader_waits, helper_waits; /* a futex wait is (about to be) under way */
    uint64_t addr, len, file_offset; /* the shared fill */
    uint32_t map_private;  /* populate each slice before reading it in */
    uint32_t active;       /* the second filler runs */
    uint32_t done[64];     /* slice i is in place: done[i % 64] == i + 1 */
    uint32_t bell;         /* futex: bumped by the leader for a new job, newly mapped fills or the exit */
    uint32_t helper_sleeps; /* the second filler waits (or is about to) on bell */
    uint32_t published;    /* the queue: fills [0, published) are mapped and marked (rs_fill.queued) */
    uint32_t pad;
    uint64_t cursor;       /* the queue's next slice to take: fill index << 32 | slice */
  } pair;
};
#define RS_PAIR_RING 64u
#define RS_PAIR_EXIT 0xffffffffu
#define RS_QUEUE_LEADERS 0x80000000u /* rs_fill.queued: the leader fills it alone (through mem or the job) */
#define RS_QUEUE_POPULATE 0x40000000u /* rs_fill.queued: each slice populated first (a private mapping) */
#define RS_QUEUE_DONE 0x3fffffffu    /* rs_fill.queued: its slices in place so far */

/* rs_args.fill_flags (decision 230). */
#define RS_FILL_HASH_AVX2 1u   /* AVX2 usable (CPU and kernel): hash with xxh3_avx2.c */
#define RS_FILL_VIA_SCRATCH 2u /* pread into the scratch buffer, hash it, place it with
                                * process_vm_writev (decision 211) instead of pread into place */
#define RS_FILL_REFUSE_FORCE 4u /* tests: act as if the kernel refused forced writes to
                                 * /proc/self/mem (proc_mem.force_override=never, decision 237) */
#define RS_FILL_PAIR_REQUIRED 8u /* tests: a second filler that cannot be made fails the restore */
#define RS_FILL_SECOND_ONLY 16u  /* tests: the second filler fills every slice of a shared fill, the
                                  * leader only hashes them (decision 248) */
#define RS_FILL_ONE 32u          /* one filler, whatever the sizes and CPUs (decision 248) */
#define RS_FILL_ASSUME_BUSY 64u  /* tests: imgtool acts as if no CPU were free, so only a cold page
                                  * cache asks for the second filler (decision 257); unused by the blob */

/* A checked fill is read into place and hashed there a slice at a time
 * (decision 230): so many bytes that the slice is still in the cache
 * when the hash reads it back, few enough calls that they cost nothing.
 * 256 KiB was the fastest of 64 KiB - 4 MiB in the micro-benchmark. The
 * two fillers share a fill by these slices too (decision 248). */
#define RS_FILL_SLICE (256ul << 10)

/* What follows the RS_OK byte on status_fd: where imgtool finds the
 * restorer to hand the process over (reader/src/handover.cc). Every thread
 * then waits on threads_go; imgtool attaches to each with ptrace, sets it,
 * follows each thread out through rt_sigreturn and unmaps the region. */
struct rs_handover {
  uint64_t region_start, region_end; /* the restorer region (self_start/end) */
  uint64_t threads_go;               /* address of rs_args.threads_go */
};

/* Failure stages reported through status_fd (one byte). */
enum rs_stage {
  RS_OK = 0,
  RS_UNMAP = 1,
  RS_MOVE = 2,
  RS_MAP = 3,
  RS_FILL = 4,
  RS_PROTECT = 5,
  RS_MM = 6,
  RS_CLONE = 7,
  RS_THREAD = 8,
  RS_SIGNAL = 9,
  RS_BAD_ARGS = 10,
  RS_CREDS = 11,           /* setgroups/setresgid/setresuid, PR_SET_KEEPCAPS */
  RS_TLS = 12,             /* ARCH_SET_FS / ARCH_SET_GS */
  RS_ROBUST_LIST = 13,
  RS_RSEQ = 14,
  RS_CAPS = 15,            /* capset, ambient set, bounding set */
  RS_SECUREBITS = 16,
  RS_NO_NEW_PRIVS = 17,
  RS_LOCK_MEMORY = 18,
  RS_LAZY = 19,
  RS_GUARD = 20,           /* MADV_GUARD_INSTALL */
  /* A checksum of the image did not match: the text of the line follows
   * (as verify words it), then EOF. The image is damaged, not the process:
   * imgtool reports the line as it is (verdict.cc). */
  RS_CHECKSUM = 21,
  RS_SEAL = 22,            /* F_ADD_SEALS of a memfd after its mappings */
  /* clone3 set_tid still found a thread's tid taken after the retries
   * (decision 254): EEXIST, then the tid (i32, little-endian), so that
   * imgtool names it as the preflight does (verdict.cc). */
  RS_TID_TAKEN = 23,
  /* An RS_ASSERT (syscalls.h) failed: the line (u16, little-endian), the
   * file's name and a NUL, then the condition's text follow the two bytes. Far from the stages above so
   * that new stages can be appended. */
  RS_INTERNAL = 127,
};

#ifdef __cplusplus
}
#endif

#endif
