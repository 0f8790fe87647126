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
};

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
};

/* A kernel-provided mapping ([vdso], [vvar], [vvar_vclock]) to move. */
struct rs_move {
  uint64_t from, to, len;
};

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
  uint64_t sigframe;       /* address of a ready rt_sigframe (ucontext at +8) */
  uint64_t stack_top;      /* restorer stack for this thread */
  char comm[16];           /* thread name, NUL-terminated */
};

/* A signal to queue once all threads exist (tid 0: process-wide). */
struct rs_signal {
  int32_t tid;
  int32_t signo;
  uint8_t siginfo[128];
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
  uint32_t stopped;        /* the process was job-control stopped: stop it again */
  uint32_t threads_go;     /* futex word: set once the stop has been taken */
  uint32_t set_creds;      /* set the ids below on every thread, last of all */
  uint32_t uid[3], gid[3]; /* real, effective, saved */
  uint32_t ngroups;
  uint32_t *groups;
  uint32_t dumpable;       /* PR_SET_DUMPABLE after the ids change */
  int32_t uffd;            /* lazy: the userfaultfd imgtool's helper serves, or -1 */
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
  RS_LOCK_MEMORY = 11,
  RS_LAZY = 12,
};

#ifdef __cplusplus
}
#endif

#endif
