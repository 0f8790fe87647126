/* Two fillers (decisions 248, 267): on a machine with a second CPU, a
 * temporary thread of the restorer fills part of the image's fills while
 * the leader fills the rest (and hashes), so that the kernel's making of
 * fresh pages (the populate and the pread's copy, nearly all of an eager
 * restore's CPU and of a warm start's restorer) runs on both CPUs.
 *
 * Two ways of sharing, one thread:
 * - The queue (decision 267): the fills shorter than pair_min, cut in
 *   RS_FILL_SLICE slices. The leader marks each VMA's fills
 *   (rs_fill.queued) as it maps it, and opens the queue once every VMA
 *   is mapped (not before: the mmap_lock, rs_queue_open); either filler takes
 *   the next slice (cursor), populates it and reads it into place, and
 *   counts it in its fill's queued word. The leader then walks the fills
 *   in file order, waits for (or takes) each one's slices and hashes the
 *   whole fill: the many short fills of a warm start.
 * - A job (decision 248): a long fill (>= pair_min), cut into slices both
 *   take in turn; the leader hashes slice by slice in file order, each as
 *   soon as it is in place, whoever filled it, so the slices are still in
 *   the cache. No slice is taken more than RS_PAIR_RING slices ahead of
 *   the hashing, so the ring done[] says which are in place.
 * Either way the leader alone hashes, in file order (xxh3 is one
 * sequential stream): a damaged byte is refused with the same line
 * whichever filler read it.
 *
 * The thread takes a tid of its own, by the kernel's ordinary allocation:
 * imgtool asks for it (rs_args.fillers) only for a restore of one process,
 * whose threads all exist with their tids by now (rs_main makes them
 * first), so it cannot take a tid the restore still needs. It is gone,
 * released by the kernel, before the restorer reports success: no
 * restored process shows it. A failure in it (pread, RS_ASSERT) ends the
 * whole process with its stage, as the leader's would. */
#include "syscalls.h"

#define NONE 0xffffffffu  /* take(): no slice of the job left */
#define LATER 0xfffffffeu /* take(): the next slice is too far ahead of the hashing */

static struct rs_fill_pair *pair_of(const struct rs_args *a) { return (struct rs_fill_pair *)&a->pair; }

static uint32_t load(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static void store(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static void wait_while(uint32_t *p, uint32_t v) { sys4(NR_futex, p, FUTEX_WAIT, v, 0); }
static void wake(uint32_t *p) { sys3(NR_futex, p, FUTEX_WAKE, 1); }

/* Something new for the second filler (a job, published fills, the exit):
 * woken only if it sleeps, a system call saved on most rings. */
static void ring(struct rs_fill_pair *p) {
  __atomic_add_fetch(&p->bell, 1, __ATOMIC_SEQ_CST);
  if (load(&p->helper_sleeps)) wake(&p->bell);
}

static uint32_t slices_of(const struct rs_fill *f) { return (uint32_t)((f->len + RS_FILL_SLICE - 1) / RS_FILL_SLICE); }

/* The queue's next slice, in file order, of a published fill not the
 * leader's alone: 1 with it in *fi, *si; 0 when none is published. */
static int claim(const struct rs_args *a, struct rs_fill_pair *p, uint32_t *fi, uint32_t *si) {
  for (;;) {
    uint64_t c = __atomic_load_n(&p->cursor, __ATOMIC_SEQ_CST);
    uint32_t f = (uint32_t)(c >> 32), s = (uint32_t)c;
    if (f >= load(&p->published)) return 0;
    const struct rs_fill *fl = &a->fill[f];
    int leaders = (load(&fl->queued) & RS_QUEUE_LEADERS) != 0;
    uint64_t next = leaders || s + 1 >= slices_of(fl) ? (uint64_t)(f + 1) << 32 : c + 1;
    if (!__atomic_compare_exchange_n(&p->cursor, &c, next, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) continue;
    if (leaders) continue;
    *fi = f;
    *si = s;
    return 1;
  }
}

/* Slice s of fill f made present (populate, as fill_checked does:
 * decision 230; ignored where it fails, it tunes), read into place and
 * counted. */
static void fill_queued(const struct rs_args *a, struct rs_fill_pair *p, uint32_t f, uint32_t s) {
  struct rs_fill *fl = &a->fill[f];
  ulong off = (ulong)s * RS_FILL_SLICE;
  ulong n = fl->len - off < RS_FILL_SLICE ? fl->len - off : RS_FILL_SLICE;
  if (load(&fl->queued) & RS_QUEUE_POPULATE) sys3(NR_madvise, fl->addr + off, n, MADV_POPULATE_WRITE);
  rs_read_fully(a, fl->addr + off, n, fl->file_offset + off);
  __atomic_add_fetch(&fl->queued, 1, __ATOMIC_SEQ_CST);
  if (load(&p->leader_waits)) wake(&fl->queued);
}

static uint32_t take(struct rs_fill_pair *p) {
  for (;;) {
    uint32_t i = load(&p->next);
    if (i >= p->nslice) return NONE;
    if (i >= load(&p->hashed) + RS_PAIR_RING) return LATER;
    if (__atomic_compare_exchange_n(&p->next, &i, i + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return i;
  }
}

/* Slice i made present (one MADV_POPULATE_WRITE, as fill_checked does:
 * decision 230; ignored where it fails, it tunes) and read into place. */
static void fill_slice(const struct rs_args *a, struct rs_fill_pair *p, uint32_t i) {
  ulong off = (ulong)i * RS_FILL_SLICE;
  ulong n = p->len - off < RS_FILL_SLICE ? p->len - off : RS_FILL_SLICE;
  if (p->map_private) sys3(NR_madvise, p->addr + off, n, MADV_POPULATE_WRITE);
  rs_read_fully(a, p->addr + off, n, p->file_offset + off);
  store(&p->done[i % RS_PAIR_RING], i + 1);
  if (load(&p->leader_waits)) wake(&p->done[i % RS_PAIR_RING]);
}

/* The second filler: a job first (the leader waits on it), else the
 * queue's next slice, else sleeps until the bell rings; until the leader
 * says exit. */
static void __attribute__((noreturn)) second_filler(void *args, void *unused) {
  (void)unused;
  const struct rs_args *a = args;
  struct rs_fill_pair *p = pair_of(a);
  uint32_t seen = 0;
  for (;;) {
    uint32_t bell = load(&p->bell);
    uint32_t job = load(&p->job);
    if (job == RS_PAIR_EXIT) break;
    if (job != seen) {
      seen = job;
      for (;;) {
        uint32_t i = take(p);
        if (i == NONE) break;
        if (i == LATER) {
          store(&p->helper_waits, 1);
          uint32_t h = load(&p->hashed);
          if (load(&p->next) >= h + RS_PAIR_RING && load(&p->next) < p->nslice) wait_while(&p->hashed, h);
          store(&p->helper_waits, 0);
          continue;
        }
        fill_slice(a, p, i);
      }
      store(&p->job_done, job);
      wake(&p->job_done);
      continue;
    }
    uint32_t f, sl;
    if (claim(a, p, &f, &sl)) {
      fill_queued(a, p, f, sl);
      continue;
    }
    store(&p->helper_sleeps, 1);
    if (load(&p->bell) == bell) wait_while(&p->bell, bell);
    store(&p->helper_sleeps, 0);
  }
  for (;;) sys1(NR_exit, 0);
}

void rs_pair_start(const struct rs_args *a) {
  struct rs_fill_pair *p = pair_of(a);
  if (a->fillers < 2) return;
  struct clone_args_v2 ca = {0};
  ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
             CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
  ca.parent_tid = (uint64_t)(ulong)&p->helper_tid;
  ca.child_tid = (uint64_t)(ulong)&p->helper_tid;
  ca.stack = a->filler_stack_top - 16384;
  ca.stack_size = 16384;
  long r = rs_clone3(&ca, second_filler, (void *)a, 0);
  if (r < 0) {
    /* It only speeds the restore up: one filler does it all (tests ask
     * for a failure instead, to know the pair ran). */
    if (a->fill_flags & RS_FILL_PAIR_REQUIRED) fail(a, RS_CLONE, r);
    return;
  }
  p->active = 1;
}

int rs_pair_active(const struct rs_args *a) { return pair_of(a)->active; }

void rs_pair_begin(const struct rs_args *a, ulong addr, ulong len, ulong file_offset, int map_private) {
  struct rs_fill_pair *p = pair_of(a);
  RS_ASSERT(a, p->active && len && load(&p->job_done) == p->job);
  p->addr = addr;
  p->len = len;
  p->file_offset = file_offset;
  p->map_private = map_private != 0;
  p->nslice = (uint32_t)((len + RS_FILL_SLICE - 1) / RS_FILL_SLICE);
  RS_ASSERT(a, (ulong)p->nslice * RS_FILL_SLICE >= len);
  for (unsigned i = 0; i < RS_PAIR_RING; i++) p->done[i] = 0;
  p->next = 0;
  p->hashed = 0;
  uint32_t job = p->job + 1 == RS_PAIR_EXIT ? 1 : p->job + 1;
  store(&p->job, job);
  ring(p);
}

/* The next slice in file order, once it is in place (0 when none is
 * left): the leader fills slices itself while the one to hash next is
 * still being read by the other. The ring's "hashed" means "handed to
 * the caller", who hashes it before asking for the next. */
int rs_pair_next(const struct rs_args *a, ulong *addr, ulong *len) {
  struct rs_fill_pair *p = pair_of(a);
  uint32_t h = load(&p->hashed);
  if (h >= p->nslice) return 0;
  for (;;) {
    uint32_t *slot = &p->done[h % RS_PAIR_RING];
    if (load(slot) == h + 1) break;
    uint32_t i = (a->fill_flags & RS_FILL_SECOND_ONLY) ? LATER : take(p);
    if (i != NONE && i != LATER) {
      fill_slice(a, p, i);
      continue;
    }
    /* Slice h is the second filler's, under way: wait for it. */
    store(&p->leader_waits, 1);
    uint32_t seen = load(slot);
    if (seen != h + 1) wait_while(slot, seen);
    store(&p->leader_waits, 0);
  }
  ulong off = (ulong)h * RS_FILL_SLICE;
  *addr = p->addr + off;
  *len = p->len - off < RS_FILL_SLICE ? p->len - off : RS_FILL_SLICE;
  /* Its flag is read: the ring slot is free for slice h + RS_PAIR_RING
   * (the bytes stay where they are, for the caller to hash). */
  store(&p->hashed, h + 1);
  if (load(&p->helper_waits)) wake(&p->hashed);
  return 1;
}

/* The fills [first, first + n) of a VMA just mapped are marked for the
 * queue (the leader's alone: those filled through /proc/self/mem, whose
 * VMA is not writable, and the long ones a job shares; leaders). */
void rs_queue_mark(const struct rs_args *a, uint32_t first, uint32_t n, int leaders, int map_private) {
  RS_ASSERT(a, pair_of(a)->active && load(&pair_of(a)->published) == 0);
  for (uint32_t k = first; k < first + n; k++) {
    struct rs_fill *fl = &a->fill[k];
    RS_ASSERT(a, k < a->nfill && fl->len && slices_of(fl) <= RS_QUEUE_DONE);
    int alone = leaders || fl->len >= a->pair_min;
    fl->queued = alone ? RS_QUEUE_LEADERS : (map_private ? RS_QUEUE_POPULATE : 0);
  }
}

/* Every VMA is mapped and every fill marked: the queue opens. Not before:
 * each mmap takes the mm's mmap_lock for writing, each populate for
 * reading, and their overlap made both wait on it (measured: slower than
 * one filler, decision 267). */
void rs_queue_open(const struct rs_args *a) {
  struct rs_fill_pair *p = pair_of(a);
  store(&p->published, a->nfill);
  ring(p);
}

/* Whether fill f is the leader's alone (filled as without the queue). */
int rs_queue_leaders(const struct rs_args *a, uint32_t f) { return (load(&a->fill[f].queued) & RS_QUEUE_LEADERS) != 0; }

/* Fill f (published, not the leader's alone) is in place: the leader
 * takes the queue's next slices itself while f's are under way in the
 * other filler, and waits only when none is left to take. */
void rs_queue_wait(const struct rs_args *a, uint32_t f) {
  struct rs_fill_pair *p = pair_of(a);
  struct rs_fill *fl = &a->fill[f];
  uint32_t n = slices_of(fl), q, fi, si;
  while (((q = load(&fl->queued)) & RS_QUEUE_DONE) != n) {
    if (!(a->fill_flags & RS_FILL_SECOND_ONLY) && claim(a, p, &fi, &si)) {
      fill_queued(a, p, fi, si);
      continue;
    }
    store(&p->leader_waits, 1);
    if (load(&fl->queued) == q) wait_while(&fl->queued, q);
    store(&p->leader_waits, 0);
  }
}

/* Every slice is hashed: wait until the second filler has left the job,
 * so that the next job can reset the ring. */
void rs_pair_end(const struct rs_args *a) {
  struct rs_fill_pair *p = pair_of(a);
  RS_ASSERT(a, load(&p->hashed) == p->nslice);
  uint32_t job = p->job, done;
  while ((done = load(&p->job_done)) != job) wait_while(&p->job_done, done);
}

/* The second filler leaves, and is waited for until the kernel has
 * released it: its tid is free again and no /proc listing shows it when
 * the restorer reports success. */
void rs_pair_stop(const struct rs_args *a) {
  struct rs_fill_pair *p = pair_of(a);
  if (!p->active) return;
  int32_t tid = p->helper_tid;
  store(&p->job, RS_PAIR_EXIT);
  ring(p);
  /* Kernel quirk: CLONE_CHILD_CLEARTID zeroes the word and wakes its
   * futex in mm_release, before the thread's exit_notify releases it
   * (kernel/exit.c): the tid stays in use, and the task in
   * /proc/PID/task, a little longer. tgkill with signal 0 finds it until
   * then (ESRCH after). Bounded: a tracer that keeps it as a zombie
   * (strace -f of imgtool) must not hang the restore. */
  int32_t now;
  while ((now = __atomic_load_n(&p->helper_tid, __ATOMIC_SEQ_CST)) != 0) wait_while((uint32_t *)&p->helper_tid, (uint32_t)now);
  long self = sys1(NR_getpid, 0);
  for (unsigned k = 0; k < 1000000 && sys3(NR_tgkill, self, tid, 0) != -ESRCH_NR; k++) sys1(NR_sched_yield, 0);
  p->active = 0;
}
