/* The restorer's memory work: unmap the old address space, move the
 * special mappings ([vdso], [vvar], ...) to the image's addresses, and map
 * and fill the image's memory, checking each checksum as its bytes are
 * read (decision 174). See restorer.c for the order. */
#include "syscalls.h"

/* xxh3, the image's checksum, compiled in (decision 174): the header-only
 * form, its portable scalar code (this file uses no vector registers:
 * -mgeneral-regs-only; the AVX2 form is xxh3_avx2.c's, decision 230) and
 * no assert. Its few calls of memcpy and memset are the ones defined below
 * (-fno-builtin: the compiler emits calls). */
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

void unmap_all_but(const struct rs_args *a) {
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

void move_special_mappings(const struct rs_args *a) {
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
  long self;               /* our pid for process_vm_writev, 0 once it failed */
  long mem;                /* /proc/self/mem once opened; -1 not yet, -2 cannot be */
  int forced;              /* the VMA being filled is not writable: its fills go through mem */
  int refused;             /* the kernel refused a forced write: every later one is made writable too */
};

void rs_read_fully(const struct rs_args *a, ulong addr, ulong len, ulong off) {
  while (len) {
    long r = sys4(NR_pread64, a->image_fd, addr, len, off);
    if (r <= 0) fail(a, RS_FILL, r ? r : -5);
    addr += r;
    off += r;
    len -= r;
  }
}

static void hash_update(const struct rs_args *a, struct running_check *run, const void *p, ulong n) {
  if (a->fill_flags & RS_FILL_HASH_AVX2)
    rs_xxh3_update_avx2(&run->state, p, n);
  else
    XXH3_64bits_update(&run->state, p, n);
}

/* The n bytes of the scratch buffer (just hashed) go into place at addr
 * (RS_FILL_VIA_SCRATCH, decision 211). Kernel quirk (of the AMD VM's
 * shadow paging, PVM): the first access to a page through a user address,
 * the kernel's copy in pread included, cost a fault-like exit per 4 KiB
 * page there (pread into place: ~7 ms per 2 MiB); process_vm_writev on
 * ourselves writes through the kernel's own mapping of each page instead
 * (pinned pages, kmap): ~1.5 ms per 2 MiB, and the bytes placed are the
 * very bytes hashed. On this Xeon VM (EPT) the same path costs more than
 * reading into place (decision 230), so it is chosen only by
 * CKPT_RESTORE_FILL=scratch. Where it is not available (ENOSYS without
 * CONFIG_CROSS_MEMORY_ATTACH, EPERM from an LSM) or writes short, the
 * slice is read into place again, and so are all later ones after a
 * failure. */
static void place_from_scratch(const struct rs_args *a, const struct rs_vma *v, struct running_check *run,
                               ulong addr, ulong n, ulong off) {
  if (run->forced) {
    /* FOLL_FORCE, as a debugger's write: the private copy is made
     * without the VMA ever being writable, so it is not charged. */
    ulong done = 0;
    while (done < n && !(a->fill_flags & RS_FILL_REFUSE_FORCE) && !run->refused) {
      long r = sys4(NR_pwrite64, run->mem, (ulong)a->scratch + done, n - done, addr + done);
      if (r <= 0) break;
      done += (ulong)r;
    }
    if (done == n) return;
    /* Kernel quirk: a kernel booted with proc_mem.force_override=never
     * (or =ptrace; Linux 6.12+, CONFIG_PROC_MEM_*) refuses a process's
     * forced write into its own read-only mapping (EIO). Then the VMA is
     * made writable after all, charged as before decision 237, and this
     * slice and everything after it are placed the ordinary way; the
     * final mprotect takes the write away again. Every later forced VMA
     * (mapped not writable, its fills meant for mem) is made writable the
     * same way at its first fill, without trying mem again. */
    run->refused = 1;
    run->forced = 0;
    long m = sys3(NR_mprotect, v->start, v->end - v->start, v->prot | PROT_READ | PROT_WRITE);
    if (m < 0) fail(a, RS_FILL, m);
    addr += done;
    off += done;
    n -= done;
  }
  if (run->self > 0) {
    struct {
      ulong base, len;
    } local = {(ulong)a->scratch, n}, remote = {addr, n};
    long r = sys6(NR_process_vm_writev, run->self, (long)&local, 1, (long)&remote, 1, 0);
    if (r == (long)n) return;
    if (r < 0) run->self = 0;
  }
  rs_read_fully(a, addr, n, off);
}

/* The check a fill's bytes are part of, its hash started at its first
 * fill; the fills of one check follow each other in file order
 * (fill_checks.cc). */
static const struct rs_check *check_begin(const struct rs_args *a, const struct rs_fill *f, struct running_check *run) {
  RS_ASSERT(a, f->check <= a->ncheck);
  const struct rs_check *c = f->check ? &a->check[f->check - 1] : 0;
  if (c && run->check != f->check) {
    RS_ASSERT(a, f->file_offset == c->file_offset);
    XXH3_64bits_reset(&run->state);
    run->check = f->check;
    run->hashed = 0;
  }
  RS_ASSERT(a, !c || (f->file_offset == c->file_offset + run->hashed && f->len <= c->size - run->hashed));
  return c;
}

/* The fill is hashed: at its check's last byte, the digest must match. */
static void check_end(const struct rs_args *a, const struct rs_check *c, const struct rs_fill *f,
                      struct running_check *run) {
  if (!c) return;
  run->hashed += f->len;
  if (run->hashed == c->size) {
    if (XXH3_64bits_digest(&run->state) != c->xxh3) fail_checksum(a, c);
    run->check = 0;
  }
}

/* A fill, checked as it is read (not in a pass before: decision 174). By
 * default each slice of a private mapping is made present first (one
 * MADV_POPULATE_WRITE: the faults in one call instead of one exception
 * per 4 KiB page inside pread's copy, decision 170; ignored where it
 * fails: it tunes), read into place with pread, and hashed in place: the
 * bytes hashed are the bytes the program gets. With RS_FILL_VIA_SCRATCH,
 * and always for a VMA that is not writable (run->forced: its pages are
 * written through /proc/self/mem, decision 237), each slice is read into
 * the scratch buffer and hashed there, then placed (place_from_scratch).
 * A forced fill no checksum covers goes the same way, unhashed. */
static void fill_checked(const struct rs_args *a, const struct rs_vma *v, const struct rs_fill *f,
                         struct running_check *run) {
  if (!f->check && !run->forced) {
    rs_read_fully(a, f->addr, f->len, f->file_offset);
    return;
  }
  const struct rs_check *c = check_begin(a, f, run);
  int via_scratch = (a->fill_flags & RS_FILL_VIA_SCRATCH) || run->forced;
  RS_ASSERT(a, !via_scratch || (a->scratch && a->scratch_len));
  ulong slice = via_scratch ? a->scratch_len : RS_FILL_SLICE;
  for (ulong done = 0; done < f->len;) {
    ulong n = f->len - done < slice ? f->len - done : slice;
    ulong at = f->addr + done, off = f->file_offset + done;
    if (via_scratch) {
      rs_read_fully(a, (ulong)a->scratch, n, off);
      if (c) hash_update(a, run, a->scratch, n);
      place_from_scratch(a, v, run, at, n, off);
    } else {
      if (v->map_flags & MAP_PRIVATE) sys3(NR_madvise, at, n, MADV_POPULATE_WRITE);
      rs_read_fully(a, at, n, off);
      hash_update(a, run, (const void *)at, n);
    }
    done += n;
  }
  check_end(a, c, f, run);
}

/* A long fill of a writable VMA, shared by the two fillers (fill_pair.c,
 * decision 248): each slice populated and read into place by either,
 * hashed here in file order, as fill_checked does it alone. */
static void fill_paired(const struct rs_args *a, const struct rs_vma *v, const struct rs_fill *f,
                        struct running_check *run) {
  const struct rs_check *c = f->check ? check_begin(a, f, run) : 0;
  rs_pair_begin(a, f->addr, f->len, f->file_offset, (v->map_flags & MAP_PRIVATE) != 0);
  ulong at, n;
  while (rs_pair_next(a, &at, &n))
    if (c) hash_update(a, run, (const void *)at, n);
  rs_pair_end(a);
  check_end(a, c, f, run);
}

/* A VMA mapped and filled by reading is filled through /proc/self/mem
 * (decision 237): a private one never writable, where mem opens (see
 * map_vma). */
static int forced_fill(const struct rs_vma *v, struct running_check *run) {
  if (!v->nfill || v->account != RS_ACCOUNT_NO || (v->prot & PROT_WRITE)) return 0;
  if (run->mem == -1) {
    run->mem = sys4(NR_openat, AT_FDCWD_NR, "/proc/self/mem", O_RDWR_NR | O_CLOEXEC_NR, 0);
    if (run->mem < 0) run->mem = -2;
  }
  return run->mem >= 0;
}

/* The protection a VMA is mapped with until its fills are in (the SysV
 * attach's: what shmat gives). */
static int first_prot(const struct rs_vma *v, int forced) {
  if (v->sysv_shm) return PROT_READ | ((v->prot & PROT_WRITE) ? PROT_WRITE : 0) | (v->prot & PROT_EXEC);
  int read_fill = v->nfill != 0;
  /* Readable too: a checked fill is hashed where it was read in (not
   * one filled through /proc/self/mem: it is hashed in the scratch). */
  return (int)v->prot | (read_fill && !forced ? PROT_READ | PROT_WRITE : 0) |
         (v->account == RS_ACCOUNT_YES ? PROT_WRITE : 0);
}

/* The VMA mapped (or attached) where the image has it, ready for its
 * fills. Filled by reading: writable until filled. Served lazily: mapped
 * with the final protection and registered on the userfaultfd (in
 * finish_vma), whose helper (in imgtool) puts the pages in as they are
 * touched. Kernel quirk: a private mapping is charged to commit
 * (VM_ACCOUNT, smaps "ac") by an mmap with PROT_WRITE or the first
 * mprotect that adds it, and keeps the charge when write is dropped again
 * (mm/mprotect.c, mprotect_fixup; but see below); so one that was
 * writable once is mapped writable, and a read-only one that never was is
 * filled through /proc/self/mem instead (decision 237). Where that cannot
 * be opened (no /proc here) it is filled writable, as before. */
static void map_vma(const struct rs_args *a, const struct rs_vma *v, struct running_check *run) {
  ulong len = v->end - v->start;
  int read_fill = v->nfill != 0;
  int prot0 = first_prot(v, forced_fill(v, run));
  int flags = MAP_FIXED | (int)v->map_flags | (v->fd < 0 ? MAP_ANONYMOUS : 0);
  long r;
  if (v->sysv_shm) {
    /* A SysV attach (shmdt and shm_nattch see it), of the segment imgtool
     * made again with the image's id and bytes; the protection shmat
     * gives is read, write unless SHM_RDONLY, exec with SHM_EXEC. */
    int shmflg = ((v->prot & PROT_WRITE) ? 0 : SHM_RDONLY) | ((v->prot & PROT_EXEC) ? SHM_EXEC : 0);
    r = sys3(NR_shmat, v->shmid, v->start, shmflg);
  } else {
    r = sys6(NR_mmap, v->start, len, prot0, flags, v->fd, v->pgoff);
  }
  if (r != (long)v->start) fail(a, RS_MAP, r < 0 ? r : -22);
  /* Kernel quirk: mprotect dropping write from an anonymous mapping
   * never faulted in (no anon_vma) drops its charge too (mm/mprotect.c,
   * mprotect_fixup; seen on 6.18): one charged without write had been
   * faulted in. A page written and dropped again gives it an anon_vma
   * and leaves it as empty as before, also for the lazy helper. */
  if (v->account == RS_ACCOUNT_YES && !(v->prot & PROT_WRITE) && v->fd < 0 && !read_fill && !v->sysv_shm) {
    *(volatile char *)v->start = 0;
    /* The whole VMA: where THP is "always" (or mTHP is on) the write can
     * bring in a huge folio, and dropping 4 KiB of it would leave the
     * other pages present (and, under --lazy, never asked for). */
    sys3(NR_madvise, v->start, len, MADV_DONTNEED);
  }
  /* The program's huge-page choice applies before the pages are read in,
   * not after: a MADV_HUGEPAGE region is then filled in 2 MiB pages (one
   * fault each instead of 512, the cost that bounds filling fresh memory
   * on a VM), and a MADV_NOHUGEPAGE one stays in small pages even where
   * THP is "always". */
  if (read_fill && (v->madvise & (RS_MADV_HUGEPAGE | RS_MADV_NOHUGEPAGE)))
    sys3(NR_madvise, v->start, len, (v->madvise & RS_MADV_HUGEPAGE) ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
}

/* The VMA's fills, in file order, hashed as they are read. With two
 * fillers (queued), a fill on the queue is waited for (or taken) and then
 * hashed whole (fill_pair.c, decision 267). */
static void fill_vma(const struct rs_args *a, const struct rs_vma *v, struct running_check *run, int queued) {
  for (unsigned k = 0; k < v->nfill; k++) {
    uint32_t fi = v->first_fill + k;
    const struct rs_fill *f = &a->fill[fi];
    RS_ASSERT(a, fi < a->nfill && f->addr >= v->start && f->len <= v->end - f->addr);
    if (queued && !rs_queue_leaders(a, fi)) {
      const struct rs_check *c = f->check ? check_begin(a, f, run) : 0;
      rs_queue_wait(a, fi);
      if (c) hash_update(a, run, (const void *)f->addr, f->len);
      check_end(a, c, f, run);
      continue;
    }
    /* A fill read into place by pread whole (one no checksum covers, or
     * every fill once process_vm_writev failed) has its pages made
     * first, all in one call (MADV_POPULATE_WRITE, Linux 5.14+; ignored
     * where it fails: it tunes), so the pread finds them present instead
     * of taking a fault per 4 KiB page inside its copy (decision 170). In
     * a private file mapping it makes the private copies the pread's
     * copy-on-write faults would. Only the stored ranges, so the resident
     * set is the original's. Never on a userfaultfd-registered range (a
     * populate there would wait for a helper not yet serving): a VMA is
     * filled before it is registered, and one served lazily has no fill.
     * A checked fill read into place is populated a slice at a time in
     * fill_checked (decision 230); one placed by process_vm_writev needs
     * no populate: its pin makes the same pages (decision 223). */
    /* Long fills of a VMA filled in place are shared with the second
     * filler (decision 248); what goes through the scratch buffer
     * stays the leader's alone. */
    if (!run->forced && !(a->fill_flags & RS_FILL_VIA_SCRATCH) && f->len >= a->pair_min && rs_pair_active(a)) {
      fill_paired(a, v, f, run);
      continue;
    }
    int whole_pread = !run->forced && (!f->check || ((a->fill_flags & RS_FILL_VIA_SCRATCH) && run->self <= 0));
    if ((v->map_flags & MAP_PRIVATE) && whole_pread) sys3(NR_madvise, f->addr, f->len, MADV_POPULATE_WRITE);
    fill_checked(a, v, f, run);
  }
}

/* The VMA's steps once its fills are in: userfaultfd registration, its
 * final protection, mlock, madvise. */
static void finish_vma(const struct rs_args *a, const struct rs_vma *v, struct running_check *run) {
  ulong len = v->end - v->start;
  long r;
  if (v->uffd) {
    /* The whole VMA, so it is not split: pages that were zero are
     * served as zero pages until the helper hands it back. */
    struct {
      uint64_t start, len, mode, ioctls;
    } reg = {v->start, len, UFFDIO_REGISTER_MODE_MISSING, 0};
    r = sys3(NR_ioctl, a->uffd, UFFDIO_REGISTER, &reg);
    if (r < 0) fail(a, RS_LAZY, r);
  }
  /* A VMA filled through /proc/self/mem until the kernel refused it was
   * made writable (place_from_scratch); mprotect to its own protection
   * changes nothing where it was not. */
  int forced_kind = v->nfill && v->account == RS_ACCOUNT_NO && !(v->prot & PROT_WRITE);
  if ((ulong)first_prot(v, forced_fill(v, run)) != v->prot || (forced_kind && run->refused)) {
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

void map_memory(const struct rs_args *a) {
  struct running_check run;
  run.check = 0;
  run.hashed = 0;
  run.self = sys1(NR_getpid, 0);
  /* The fills read the image mostly in file order: twice the read-ahead
   * window for a cold page cache (POSIX_FADV_SEQUENTIAL; it tunes, so its
   * failure is ignored). */
  sys4(NR_fadvise64, a->image_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  run.mem = -1;
  run.refused = 0;
  /* The second filler, if imgtool asked for one: after every thread of
   * the process exists with its tid (rs_main), gone before the end. */
  rs_pair_start(a);
  /* With two fillers the leader maps every VMA first, marking each one's
   * fills for the queue, then opens the queue: both fillers read the
   * fills in while the leader hashes each one in file order (taking
   * fills itself while the next to hash is under way); then it finishes
   * the filled VMAs (decision 267). A VMA without fills is finished at
   * once. Kept apart because mmap and mprotect take the mmap_lock for
   * writing, the populates for reading. What goes through the scratch
   * buffer stays the leader's, in the one walk. */
  int queued = rs_pair_active(a) && !(a->fill_flags & RS_FILL_VIA_SCRATCH);
  for (unsigned i = 0; i < a->nvma; i++) {
    const struct rs_vma *v = &a->vma[i];
    map_vma(a, v, &run);
    run.forced = forced_fill(v, &run);
    if (queued && v->nfill) {
      rs_queue_mark(a, v->first_fill, v->nfill, run.forced, (v->map_flags & MAP_PRIVATE) != 0);
      continue;
    }
    fill_vma(a, v, &run, 0);
    finish_vma(a, v, &run);
  }
  if (queued) {
    rs_queue_open(a);
    for (unsigned i = 0; i < a->nvma; i++) {
      run.forced = forced_fill(&a->vma[i], &run);
      fill_vma(a, &a->vma[i], &run, 1);
    }
    for (unsigned i = 0; i < a->nvma; i++)
      if (a->vma[i].nfill) finish_vma(a, &a->vma[i], &run);
  }
  rs_pair_stop(a);
  RS_ASSERT(a, run.check == 0); /* every check's fills came to its end */
  if (run.mem >= 0) sys1(NR_close, run.mem);
}
