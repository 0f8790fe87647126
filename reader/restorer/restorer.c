/* The restorer: a freestanding, position-independent blob that replaces the
 * process it runs in with the image's. It is copied into a region free in
 * both the old and the new address space, entered on its own stack, and
 * never returns: it unmaps everything else, maps the image's memory, sets
 * the mm fields, creates the threads with their original tids and hands
 * each thread its registers through rt_sigreturn.
 *
 * No libc, no relocations: every reference is RIP-relative and all data
 * comes through the RestoreArgs block (abi.h). */
#include "abi.h"

typedef unsigned long ulong;

/* xxh3, the image's checksum, compiled in (decision 174): the header-only
 * form, its portable scalar code (the blob uses no vector registers:
 * -mgeneral-regs-only) and no assert. Its few calls of memcpy and memset
 * are the ones defined below (-fno-builtin: the compiler emits calls). */
void *memcpy(void *dst, const void *src, unsigned long n);
void *memset(void *dst, int c, unsigned long n);
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_SCALAR
#define XXH_FORCE_MEMORY_ACCESS 1 /* unaligned loads through packed structs, not memcpy calls */
#define XXH_DEBUGLEVEL 0
#include <xxhash.h>

void *memcpy(void *dst, const void *src, unsigned long n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memset(void *dst, int c, unsigned long n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}

/* x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
enum {
  NR_write = 1, NR_close = 3, NR_ioctl = 16, NR_mmap = 9, NR_mprotect = 10, NR_munmap = 11,
  NR_rt_sigreturn = 15, NR_pread64 = 17, NR_mremap = 25, NR_madvise = 28, NR_shmat = 30,
  NR_getpid = 39, NR_exit = 60, NR_rt_sigqueueinfo = 129, NR_prctl = 157,
  NR_arch_prctl = 158, NR_futex = 202, NR_set_tid_address = 218,
  NR_exit_group = 231, NR_set_robust_list = 273, NR_rt_tgsigqueueinfo = 297,
  NR_rseq = 334, NR_clone3 = 435, NR_kill = 62, NR_setgroups = 116, NR_setresuid = 117,
  NR_setresgid = 119, NR_capset = 126, NR_seccomp = 317, NR_mlock2 = 325,
  NR_mlockall = 151, NR_getppid = 110, NR_fcntl = 72,
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
#define MAP_SHARED 1
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define MAP_PRIVATE 2
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_HUGETLB 0x40000
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define MADV_DONTFORK 10
#define MADV_DONTDUMP 16
#define MADV_HUGEPAGE 14
#define MADV_NOHUGEPAGE 15
#define MADV_WIPEONFORK 18
#define MADV_POPULATE_WRITE 23
#define MADV_GUARD_INSTALL 102
#define MLOCK_ONFAULT 1
#define UFFDIO_REGISTER 0xc020aa00ul /* _IOWR(0xAA, 0x00, struct uffdio_register) */
#define UFFDIO_REGISTER_MODE_MISSING 1
#define ENOMEM_NR 12
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
#define FUTEX_WAKE 1
#define TASK_SIZE_4LEVEL 0x7ffffffff000ul

/* Reports the failed stage to imgtool and dies: after the unmapping there
 * is nothing to return to. */
static void __attribute__((noreturn)) fail(const struct rs_args *a, int stage, long err) {
  unsigned char msg[2] = {(unsigned char)stage, (unsigned char)(-err)};
  sys3(NR_write, a->status_fd, msg, 2);
  for (;;) sys1(NR_exit_group, 127);
}

/* RS_ASSERT(a, cond): the restorer's CKPT_ASSERT, on in every build, for
 * invariants of the argument block imgtool laid out. A failure is reported
 * like a failed stage (RS_INTERNAL), with the line and the condition. */
static void __attribute__((noreturn)) fail_assert(const struct rs_args *a, unsigned line, const char *cond) {
  unsigned char msg[128] = {RS_INTERNAL, 0, (unsigned char)line, (unsigned char)(line >> 8)};
  unsigned n = 4;
  while (*cond && n < sizeof msg) msg[n++] = (unsigned char)*cond++;
  sys3(NR_write, a->status_fd, msg, n);
  for (;;) sys1(NR_exit_group, 127);
}
#define RS_ASSERT(a, cond) \
  do {                     \
    if (!(cond)) fail_assert((a), __LINE__, #cond); \
  } while (0)

static void unmap_all_but(const struct rs_args *a) {
  /* Everything below TASK_SIZE except our own region and the mappings we
   * move goes: munmap of an empty range is harmless, so the gaps between the
   * kept ranges are unmapped whole, whatever they hold. */
  ulong keep_start[16], keep_end[16];
  unsigned n = 0;
  keep_start[n] = a->self_start;
  keep_end[n++] = a->self_end;
  RS_ASSERT(a, a->nmove < 16);
  for (unsigned i = 0; i < a->nmove; i++) {
    keep_start[n] = a->move[i].from;
    keep_end[n++] = a->move[i].from + a->move[i].len;
  }
  /* sort the few kept ranges */
  for (unsigned i = 1; i < n; i++)
    for (unsigned j = i; j > 0 && keep_start[j] < keep_start[j - 1]; j--) {
      ulong s = keep_start[j], e = keep_end[j];
      keep_start[j] = keep_start[j - 1];
      keep_end[j] = keep_end[j - 1];
      keep_start[j - 1] = s;
      keep_end[j - 1] = e;
    }
  ulong at = 0x1000;
  for (unsigned i = 0; i <= n; i++) {
    ulong stop = i < n ? keep_start[i] : TASK_SIZE_4LEVEL;
    if (stop > at) {
      long r = sys2(NR_munmap, at, stop - at);
      if (r < 0) fail(a, RS_UNMAP, r);
    }
    if (i < n && keep_end[i] > at) at = keep_end[i];
  }
}

static void move_special_mappings(const struct rs_args *a) {
  /* Two steps, through scratch space, so that a move whose target overlaps
   * another mapping's current place cannot clobber it. */
  ulong scratch = a->move_scratch;
  for (unsigned i = 0; i < a->nmove; i++) {
    const struct rs_move *m = &a->move[i];
    long r = sys5(NR_mremap, m->from, m->len, m->len, MREMAP_MAYMOVE | MREMAP_FIXED, scratch);
    if (r < 0) fail(a, RS_MOVE, r);
    scratch += m->len;
  }
  scratch = a->move_scratch;
  for (unsigned i = 0; i < a->nmove; i++) {
    const struct rs_move *m = &a->move[i];
    if (m->to != scratch) {
      long r = sys5(NR_mremap, scratch, m->len, m->len, MREMAP_MAYMOVE | MREMAP_FIXED, m->to);
      if (r < 0) fail(a, RS_MOVE, r);
    }
    scratch += m->len;
  }
}

/* A checksum that failed: the line verify would print (integrity.cc),
 * after the stage byte, then EOF; the process dies. */
static void __attribute__((noreturn)) fail_checksum(const struct rs_args *a, const struct rs_check *c) {
  char msg[512];
  unsigned n = 0;
  msg[n++] = RS_CHECKSUM;
  const char *parts[] = {a->check_context, "checksum mismatch in segment ", 0, " (bytes ", 0, "..", 0, ")\n"};
  uint64_t numbers[] = {0, 0, c->phdr, 0, c->core_offset, 0, c->core_offset + c->size, 0};
  for (unsigned i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    if (parts[i]) {
      for (const char *p = parts[i]; *p && n < sizeof msg - 24; p++) msg[n++] = *p;
      continue;
    }
    char digits[24];
    unsigned k = 0;
    uint64_t v = numbers[i];
    do digits[k++] = (char)('0' + v % 10); while ((v /= 10) && k < sizeof digits);
    while (k) msg[n++] = digits[--k];
  }
  sys3(NR_write, a->status_fd, msg, n);
  for (;;) sys1(NR_exit_group, 127);
}

/* The checksum being computed while fills read: one at a time, as
 * imgtool assigned them (fill_checks.cc: a check's fills follow each
 * other in file order). */
struct running_check {
  XXH3_state_t state;
  uint32_t check;          /* 1 + index, or 0 */
  uint64_t hashed;
};

static void read_fully(const struct rs_args *a, ulong addr, ulong len, ulong off) {
  while (len) {
    long r = sys4(NR_pread64, a->image_fd, addr, len, off);
    if (r <= 0) fail(a, RS_FILL, r ? r : -5);
    addr += r;
    off += r;
    len -= r;
  }
}

/* A fill, checked as it is read (not in a pass before: decision 174): a
 * slice at a time, the image's bytes are read into the scratch buffer and
 * hashed there, then read again into place while the page cache's pages
 * are still in the CPU's cache. Kernel quirk (of this VM's shadow paging,
 * PVM): the first user-mode read of a page the kernel has just filled
 * costs a fault-like exit per 4 KiB page (0.45 s of CPU per 200 MiB here),
 * so hashing the restored memory itself costs as much as filling it; the
 * scratch buffer is touched once, and the second read from the page cache
 * costs almost nothing (decision 174). */
static void fill_checked(const struct rs_args *a, const struct rs_fill *f, struct running_check *run) {
  if (!f->check) {
    read_fully(a, f->addr, f->len, f->file_offset);
    return;
  }
  RS_ASSERT(a, f->check <= a->ncheck);
  const struct rs_check *c = &a->check[f->check - 1];
  if (run->check != f->check) {
    RS_ASSERT(a, f->file_offset == c->file_offset);
    XXH3_64bits_reset(&run->state);
    run->check = f->check;
    run->hashed = 0;
  }
  RS_ASSERT(a, f->file_offset == c->file_offset + run->hashed && f->len <= c->size - run->hashed);
  RS_ASSERT(a, a->scratch && a->scratch_len);
  for (ulong done = 0; done < f->len;) {
    ulong n = f->len - done < a->scratch_len ? f->len - done : a->scratch_len;
    read_fully(a, (ulong)a->scratch, n, f->file_offset + done);
    XXH3_64bits_update(&run->state, a->scratch, n);
    read_fully(a, f->addr + done, n, f->file_offset + done);
    done += n;
  }
  run->hashed += f->len;
  if (run->hashed == c->size) {
    if (XXH3_64bits_digest(&run->state) != c->xxh3) fail_checksum(a, c);
    run->check = 0;
  }
}

static void map_memory(const struct rs_args *a) {
  struct running_check run;
  run.check = 0;
  run.hashed = 0;
  for (unsigned i = 0; i < a->nvma; i++) {
    const struct rs_vma *v = &a->vma[i];
    ulong len = v->end - v->start;
    /* Filled by reading: writable until filled. Served lazily: mapped
     * with the final protection and registered on the userfaultfd, whose
     * helper (in imgtool) puts the pages in as they are touched. */
    int read_fill = v->nfill != 0;
    int prot0 = v->prot | (read_fill ? PROT_WRITE : 0);
    int flags = MAP_FIXED | (int)v->map_flags | (v->fd < 0 ? MAP_ANONYMOUS : 0);
    long r;
    if (v->sysv_shm) {
      /* A SysV attach (shmdt and shm_nattch see it), of the segment imgtool
       * made again with the image's id and bytes; the protection shmat
       * gives is read, write unless SHM_RDONLY, exec with SHM_EXEC. */
      int shmflg = ((v->prot & PROT_WRITE) ? 0 : SHM_RDONLY) | ((v->prot & PROT_EXEC) ? SHM_EXEC : 0);
      r = sys3(NR_shmat, v->shmid, v->start, shmflg);
      prot0 = PROT_READ | ((v->prot & PROT_WRITE) ? PROT_WRITE : 0) | (v->prot & PROT_EXEC);
    } else {
      r = sys6(NR_mmap, v->start, len, prot0, flags, v->fd, v->pgoff);
    }
    if (r != (long)v->start) fail(a, RS_MAP, r < 0 ? r : -22);
    /* The program's huge-page choice applies before the pages are read in,
     * not after: a MADV_HUGEPAGE region is then filled in 2 MiB pages (one
     * fault each instead of 512, the cost that bounds filling fresh memory
     * on a VM), and a MADV_NOHUGEPAGE one stays in small pages even where
     * THP is "always". */
    if (read_fill && (v->madvise & (RS_MADV_HUGEPAGE | RS_MADV_NOHUGEPAGE)))
      sys3(NR_madvise, v->start, len, (v->madvise & RS_MADV_HUGEPAGE) ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    for (unsigned k = 0; k < v->nfill; k++) {
      const struct rs_fill *f = &a->fill[v->first_fill + k];
      RS_ASSERT(a, v->first_fill + k < a->nfill && f->addr >= v->start && f->len <= v->end - f->addr);
      /* The pages about to be read in are made first, all in one call
       * (MADV_POPULATE_WRITE, Linux 5.14+; ignored where it fails: it
       * tunes), so the pread finds them present instead of taking a fault
       * per 4 KiB page inside its copy: on this kind of VM (PVM) each fault
       * exception goes through the hypervisor and costs more than the copy.
       * In a private file mapping it makes the private copies the pread's
       * copy-on-write faults would. Only the stored ranges, so the resident
       * set is the original's. Never on a userfaultfd-registered range (a
       * populate there would wait for a helper not yet serving): a VMA is
       * filled before it is registered, and one served lazily has no fill. */
      if (v->map_flags & MAP_PRIVATE) sys3(NR_madvise, f->addr, f->len, MADV_POPULATE_WRITE);
      fill_checked(a, f, &run);
    }
    if (v->uffd) {
      /* The whole VMA, so it is not split: pages that were zero are
       * served as zero pages until the helper hands it back. */
      struct {
        uint64_t start, len, mode, ioctls;
      } reg = {v->start, len, UFFDIO_REGISTER_MODE_MISSING, 0};
      r = sys3(NR_ioctl, a->uffd, UFFDIO_REGISTER, &reg);
      if (r < 0) fail(a, RS_LAZY, r);
    }
    if ((ulong)prot0 != v->prot) {
      r = sys3(NR_mprotect, v->start, len, v->prot);
      if (r < 0) fail(a, RS_PROTECT, r);
    }
    /* Locked memory stays locked: mlock2 faults in (or, on fault, keeps)
     * the pages like the original mlock did. It fails only beyond
     * RLIMIT_MEMLOCK without CAP_IPC_LOCK, which the original was within. */
    if (v->lock & RS_LOCK) {
      r = sys3(NR_mlock2, v->start, len, (v->lock & RS_LOCK_ONFAULT) ? MLOCK_ONFAULT : 0);
      /* A PROT_NONE range gets VM_LOCKED and then fails to fault in
       * (mm/mlock.c do_mlock: flags first, __mm_populate after, ENOMEM):
       * locked as the original was, so not a failure. */
      if (r < 0 && !(r == -ENOMEM_NR && v->prot == 0)) fail(a, RS_LOCK_MEMORY, r);
    }
    /* madvise failures are not fatal: they tune, they do not define. */
    if (v->madvise & RS_MADV_DONTDUMP) sys3(NR_madvise, v->start, len, MADV_DONTDUMP);
    if (v->madvise & RS_MADV_HUGEPAGE) sys3(NR_madvise, v->start, len, MADV_HUGEPAGE);
    if (v->madvise & RS_MADV_NOHUGEPAGE) sys3(NR_madvise, v->start, len, MADV_NOHUGEPAGE);
    if (v->madvise & RS_MADV_DONTFORK) sys3(NR_madvise, v->start, len, MADV_DONTFORK);
    if (v->madvise & RS_MADV_WIPEONFORK) sys3(NR_madvise, v->start, len, MADV_WIPEONFORK);
  }
  RS_ASSERT(a, run.check == 0); /* every check's fills came to its end */
}

/* capset(2) with the three sets (v3: two 32-bit words per set). */
static long set_caps(uint64_t eff, uint64_t prm, uint64_t inh) {
  struct { uint32_t version; int32_t pid; } hdr = {LINUX_CAPABILITY_VERSION_3, 0};
  struct { uint32_t eff, prm, inh; } data[2] = {
      {(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
      {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)}};
  return sys2(NR_capset, &hdr, data);
}

/* Credentials and privileges, per thread (the kernel keeps them per task).
 * The kernel dictates the order:
 *  - setresuid away from uid 0 clears the permitted and effective sets
 *    unless SECBIT_KEEP_CAPS is set (PR_SET_KEEPCAPS), and always clears
 *    the effective set (cap_emulate_setxuid), so ids go first with
 *    KEEP_CAPS set, and capset raises the effective set back to what we
 *    still hold: the steps after it need CAP_SETPCAP;
 *  - an ambient capability can only be raised while it is in both the
 *    permitted and the inheritable set, so the inheritable set is set
 *    first and the ambient set before the permitted set shrinks (capset
 *    keeps ambient ∩ permitted ∩ inheritable, which is the image's own);
 *  - PR_CAPBSET_DROP and PR_SET_SECUREBITS need CAP_SETPCAP in the
 *    effective set, so they come before the final capset drops it;
 *  - no_new_privs is one-way and needs nothing, so it is last.
 * seccomp comes later still, in enter_thread: a filter also filters these
 * calls. */
static void set_privileges(const struct rs_args *a, const struct rs_thread *t) {
  long r;
  int caps = (t->priv & RS_PRIV_CAPS) != 0;
  if (a->set_creds) {
    if (caps && (r = sys2(NR_prctl, PR_SET_KEEPCAPS, 1)) < 0) fail(a, RS_CREDS, r);
    r = sys2(NR_setgroups, a->ngroups, a->groups);
    if (r >= 0) r = sys3(NR_setresgid, a->gid[0], a->gid[1], a->gid[2]);
    if (r >= 0) r = sys3(NR_setresuid, a->uid[0], a->uid[1], a->uid[2]);
    if (r < 0) fail(a, RS_CREDS, r);
    /* Changing ids makes the mm non-dumpable; a process that was dumpable
     * (can read its own /proc files, be traced by its user) is again. */
    if (a->dumpable) sys2(NR_prctl, PR_SET_DUMPABLE, 1);
  }
  if (caps) {
    /* What we still hold (imgtool checked it covers the image's sets),
     * effective again, with the image's inheritable set. */
    r = set_caps(a->cap_permitted_now, a->cap_permitted_now, t->cap_inheritable);
    if (r < 0) fail(a, RS_CAPS, r);
    r = sys5(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    for (unsigned c = 0; c < 64 && r >= 0; c++)
      if (t->cap_ambient & (1ull << c)) r = sys5(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
    for (unsigned c = 0; c < 64 && r >= 0; c++)
      if (t->cap_bounding_drop & (1ull << c)) r = sys2(NR_prctl, PR_CAPBSET_DROP, c);
    if (r < 0) fail(a, RS_CAPS, r);
    /* KEEP_CAPS needs no privilege to change (and is ours from above). */
    r = sys2(NR_prctl, PR_SET_KEEPCAPS, (t->securebits & SECBIT_KEEP_CAPS) != 0);
    if (r < 0) fail(a, RS_SECUREBITS, r);
    if ((uint32_t)sys1(NR_prctl, PR_GET_SECUREBITS) != t->securebits) {
      r = sys2(NR_prctl, PR_SET_SECUREBITS, t->securebits);
      if (r < 0) fail(a, RS_SECUREBITS, r);
    }
    r = set_caps(t->cap_effective, t->cap_permitted, t->cap_inheritable);
    if (r < 0) fail(a, RS_CAPS, r);
  }
  if (t->priv & RS_PRIV_NO_NEW_PRIVS) {
    r = sys5(NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (r < 0) fail(a, RS_NO_NEW_PRIVS, r);
  }
}

/* Per-thread state a thread can only set on itself. Everything here can
 * fail, and does so before success is reported: the threads wait at the
 * barrier afterwards, the leader reports. */
static void setup_thread(const struct rs_args *a, const struct rs_thread *t) {
  sys2(NR_prctl, PR_SET_NAME, t->comm);
  long r = sys2(NR_arch_prctl, ARCH_SET_FS, t->fs_base);
  if (r >= 0 && t->gs_base) r = sys2(NR_arch_prctl, ARCH_SET_GS, t->gs_base);
  if (r < 0) fail(a, RS_TLS, r);
  if (t->robust_list) {
    r = sys2(NR_set_robust_list, t->robust_list, t->robust_list_len);
    if (r < 0) fail(a, RS_ROBUST_LIST, r);
  }
  sys1(NR_set_tid_address, t->clear_child_tid);
  /* rseq: a kernel without it (ENOSYS), or one that does not know the
   * image's longer rseq area (EINVAL), is tolerated: glibc copes with a
   * thread whose rseq area the kernel does not update. Anything else
   * (EFAULT, EPERM) means the area is wrong and fails the restore. */
  if (t->rseq_addr) {
    r = sys4(NR_rseq, t->rseq_addr, t->rseq_len, 0, t->rseq_sig);
    if (r < 0 && r != -ENOSYS_NR && r != -EINVAL_NR) fail(a, RS_RSEQ, r);
  }
  /* Signals pending on this thread: the kernel lets only the target thread
   * itself queue a siginfo that claims to come from kill/tgkill. */
  long pid = sys1(NR_getpid, 0);
  for (unsigned i = 0; i < a->nsignal && t != &a->thread[0]; i++)
    if (a->signal[i].tid == t->tid) {
      r = sys4(NR_rt_tgsigqueueinfo, pid, t->tid, a->signal[i].signo, a->signal[i].siginfo);
      if (r < 0) fail(a, RS_SIGNAL, r);
    }
  /* Credentials are per thread in the kernel, and last: the leader needs
   * its privileges to create the threads with their tids (clone3 set_tid). */
  set_privileges(a, t);
}

/* After the barrier: seccomp, then the thread's registers. Nothing here
 * may fail any more (imgtool installed the same filters in a throwaway
 * child first); if it does all the same, the process dies rather than run
 * with less confinement than it had. */
static void __attribute__((noreturn)) enter_thread(const struct rs_thread *t) {
  /* The filters filter every later syscall of ours too: the next seccomp()
   * and rt_sigreturn, the only ones left (strict mode allows rt_sigreturn). */
  if (t->seccomp_mode == RS_SECCOMP_STRICT) {
    if (sys3(NR_seccomp, SECCOMP_SET_MODE_STRICT, 0, 0) < 0) sys1(NR_exit_group, 127);
  } else if (t->seccomp_mode == RS_SECCOMP_FILTER) {
    for (unsigned i = 0; i < t->nfilter; i++)
      if (sys3(NR_seccomp, SECCOMP_SET_MODE_FILTER, t->filter[i].flags, &t->filter[i]) < 0)
        sys1(NR_exit_group, 127);
  }
  /* rt_sigreturn reads the frame at rsp - 8 (it takes pretcode as
   * popped): registers, signal mask, alternate stack and the XSAVE area
   * all come from it. */
  __asm__ volatile(
      "mov %0, %%rsp\n"
      "mov $15, %%eax\n"
      "syscall\n"
      "ud2\n"
      :
      : "r"(t->sigframe + __builtin_offsetof(struct rs_sigframe, uc))
      : "memory");
  __builtin_unreachable();
}

/* A thread other than the leader: set up, check in, and wait until the
 * leader has reported success for the whole process. */
static void __attribute__((noreturn)) become_thread(const struct rs_args *a, const struct rs_thread *t) {
  /* Created before the old memory goes (so that a tid taken since the
   * preflight fails the restore while nothing is lost yet); its setup
   * registers addresses in the image's memory, so it waits for that. */
  while (!__atomic_load_n(&a->memory_ready, __ATOMIC_SEQ_CST))
    sys4(NR_futex, &a->memory_ready, 0 /* FUTEX_WAIT */, 0, 0);
  setup_thread(a, t);
  __atomic_fetch_add((uint32_t *)&a->threads_started, 1, __ATOMIC_SEQ_CST);
  sys3(NR_futex, &a->threads_started, FUTEX_WAKE, 1);
  /* No instruction of the program runs before the leader has queued the
   * process-wide signals and reported success, and imgtool has taken
   * over (handover.cc). */
  while (!__atomic_load_n(&a->threads_go, __ATOMIC_SEQ_CST))
    sys4(NR_futex, &a->threads_go, 0 /* FUTEX_WAIT */, 0, 0);
  enter_thread(t);
}

void rs_thread_main(const struct rs_args *a, const struct rs_thread *t) __attribute__((used, noreturn));
void rs_thread_main(const struct rs_args *a, const struct rs_thread *t) { become_thread(a, t); }

struct clone_args_v2 {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size,
      cgroup;
};

#define CLONE_VM 0x100
#define CLONE_FS 0x200
#define CLONE_FILES 0x400
#define CLONE_SIGHAND 0x800
#define CLONE_THREAD 0x10000
#define CLONE_SYSVSEM 0x40000

static long spawn_thread(const struct rs_args *a, const struct rs_thread *t) {
  int32_t tid = t->tid;
  struct clone_args_v2 ca = {0};
  ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
  ca.stack = t->stack_top - 16384;
  ca.stack_size = 16384;
  ca.set_tid = (uint64_t)(ulong)&tid;
  ca.set_tid_size = 1;
  long ret;
  /* The child starts on its new stack with the parent's registers but
   * rax = 0; r12/r13 carry its arguments into rs_thread_main. */
  register long r12 __asm__("r12") = (long)a;
  register long r13 __asm__("r13") = (long)t;
  __asm__ volatile(
      "syscall\n"
      "test %%rax, %%rax\n"
      "jnz 1f\n"
      "mov %%r12, %%rdi\n"
      "mov %%r13, %%rsi\n"
      "and $-16, %%rsp\n"
      "call rs_thread_main\n"
      "ud2\n"
      "1:\n"
      : "=a"(ret)
      : "a"(NR_clone3), "D"(&ca), "S"(sizeof ca), "r"(r12), "r"(r13)
      : "rcx", "r11", "rdx", "memory");
  return ret;
}

void rs_main(struct rs_args *a) __attribute__((used, noreturn));
void rs_main(struct rs_args *a) {
  if (a->magic != CKPT_RS_MAGIC) fail(a, RS_BAD_ARGS, -22);
  long parent = sys1(NR_getppid, 0);
  RS_ASSERT(a, a->nthread >= 1);
  /* The threads first, with their tids: the last claim that can fail on
   * the machine's state (a tid taken since the preflight) fails while the
   * restore can still be given up cleanly. They wait for memory_ready. */
  long r;
  for (unsigned i = 1; i < a->nthread; i++) {
    r = spawn_thread(a, &a->thread[i]);
    if (r < 0) fail(a, RS_CLONE, r);
  }
  unmap_all_but(a);
  move_special_mappings(a);
  map_memory(a);
  /* A memfd sealed with F_SEAL_FUTURE_WRITE keeps the writable shared
   * mappings made before the seal, but refuses new ones (mm/memfd.c:
   * memfd_check_seals_mmap, EPERM): imgtool left that seal (and F_SEAL_SEAL,
   * which would forbid adding it) to now, when the mappings are back. */
  for (unsigned i = 0; i < a->nlate_seal; i++) {
    const struct rs_seal *s = &a->late_seal[i];
    r = sys3(NR_fcntl, s->fd, F_GET_SEALS, 0);
    if (r >= 0 && ((uint32_t)r & s->seals) != s->seals) r = sys3(NR_fcntl, s->fd, F_ADD_SEALS, s->seals & ~(uint32_t)r);
    if (r < 0) fail(a, RS_SEAL, r);
  }
  /* mlockall(MCL_FUTURE) is mm->def_flags: set last, so that only the
   * program's own later mappings are locked, as before the dump. */
  if (a->mlockall_flags) {
    r = sys1(NR_mlockall, a->mlockall_flags);
    if (r < 0) fail(a, RS_LOCK_MEMORY, r);
  }
  /* Guard pages last: installing one zaps the page under it. */
  for (unsigned i = 0; i < a->nguard; i++) {
    r = sys3(NR_madvise, a->guard[i].start, a->guard[i].end - a->guard[i].start, MADV_GUARD_INSTALL);
    if (r < 0) fail(a, RS_GUARD, r);
  }
  r = sys5(NR_prctl, PR_SET_MM, PR_SET_MM_MAP, &a->mm, sizeof a->mm, 0);
  if (r < 0) fail(a, RS_MM, r);
  for (unsigned i = 0; i < a->nclose; i++) sys1(NR_close, a->close_fds[i]);
  sys1(NR_close, a->image_fd);
  __atomic_store_n(&a->memory_ready, 1, __ATOMIC_SEQ_CST);
  sys3(NR_futex, &a->memory_ready, FUTEX_WAKE, 0x7fffffff);
  /* The leader's own setup, its credentials included, before it checks
   * on the others: everything that can fail happens before the verdict. */
  setup_thread(a, &a->thread[0]);
  /* commit_creds clears the parent-death signal when the ids change
   * (kernel/cred.c): armed again, so that the leader still dies with
   * imgtool until released (die_with_parent); a parent already gone
   * shows as a new getppid(). */
  sys2(NR_prctl, PR_SET_PDEATHSIG, 9 /* SIGKILL */);
  if (sys1(NR_getppid, 0) != parent) sys1(NR_exit_group, 127);
  /* Wait until the other threads have set themselves up (and queued their
   * own pending signals), so that their failures are still reported. */
  for (;;) {
    uint32_t n = __atomic_load_n(&a->threads_started, __ATOMIC_SEQ_CST);
    if (n >= a->nthread - 1) break;
    sys4(NR_futex, &a->threads_started, 0 /* FUTEX_WAIT */, n, 0);
  }
  /* Queued to ourselves (same thread group): the kernel allows that with
   * any credentials, so after the ids change is fine. */
  long pid = sys1(NR_getpid, 0);
  for (unsigned i = 0; i < a->nsignal; i++) {
    const struct rs_signal *s = &a->signal[i];
    if (s->tid == a->thread[0].tid)
      r = sys4(NR_rt_tgsigqueueinfo, pid, s->tid, s->signo, s->siginfo);
    else if (s->tid)
      continue; /* queued by its own thread in setup_thread */
    else
      r = sys3(NR_rt_sigqueueinfo, pid, s->signo, s->siginfo);
    if (r < 0) fail(a, RS_SIGNAL, r);
  }
  /* Success: one zero byte and where to find us, then EOF. From here on
   * imgtool takes over: it attaches to every thread, sets threads_go,
   * follows each thread out through rt_sigreturn, unmaps this region and
   * (for a stopped process) stops it, before any instruction of the
   * program runs. */
  struct {
    unsigned char ok;
    struct rs_handover h;
  } __attribute__((packed)) verdict = {RS_OK, {a->self_start, a->self_end, (uint64_t)(ulong)&a->threads_go}};
  sys3(NR_write, a->status_fd, &verdict, sizeof verdict);
  sys1(NR_close, a->status_fd);
  while (!__atomic_load_n(&a->threads_go, __ATOMIC_SEQ_CST))
    sys4(NR_futex, &a->threads_go, 0 /* FUTEX_WAIT */, 0, 0);
  /* Released: the point of no return. Until here the leader dies with
   * imgtool (PR_SET_PDEATHSIG, die_with_parent); from here the program
   * runs on even if imgtool is killed. Threads made by clone start with no
   * parent-death signal (copy_process clears it), so only the leader's. */
  sys2(NR_prctl, PR_SET_PDEATHSIG, 0);
  enter_thread(&a->thread[0]);
}

/* Entry at offset 0 of the blob: rdi = args, rsp = the leader's stack. */
__asm__(
    ".section .text.entry,\"ax\",@progbits\n"
    ".globl rs_entry\n"
    "rs_entry:\n"
    "  and $-16, %rsp\n"
    "  call rs_main\n"
    "  ud2\n"
    ".previous\n");
