/* The restorer: a freestanding, position-independent blob that replaces the
 * process it runs in with the image's. It is copied into a region free in
 * both the old and the new address space, entered on its own stack, and
 * never returns: it unmaps everything else, maps the image's memory, sets
 * the mm fields, creates the threads with their original tids and hands
 * each thread its registers through rt_sigreturn.
 *
 * No libc, no relocations: every reference is RIP-relative and all data
 * comes through the RestoreArgs block (abi.h). */
#include "syscalls.h"

void fail(const struct rs_args *a, int stage, long err) {
  unsigned char msg[2] = {(unsigned char)stage, (unsigned char)(-err)};
  sys3(NR_write, a->status_fd, msg, 2);
  for (;;) sys1(NR_exit_group, 127);
}

/* RS_TID_TAKEN, EEXIST, the tid (four bytes, little-endian). */
static void fail_tid_taken(const struct rs_args *a, int32_t tid) __attribute__((noreturn));
static void fail_tid_taken(const struct rs_args *a, int32_t tid) {
  uint32_t u = (uint32_t)tid;
  unsigned char msg[6] = {RS_TID_TAKEN, EEXIST_NR, (unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                          (unsigned char)(u >> 24)};
  sys3(NR_write, a->status_fd, msg, 6);
  for (;;) sys1(NR_exit_group, 127);
}

/* RS_INTERNAL, 0, the line (two bytes, little-endian), the file name, a
 * NUL, the condition. */
void fail_assert(const struct rs_args *a, const char *file, unsigned line, const char *cond) {
  unsigned char msg[128] = {RS_INTERNAL, 0, (unsigned char)line, (unsigned char)(line >> 8)};
  unsigned n = 4;
  while (*file && n < sizeof msg - 1) msg[n++] = (unsigned char)*file++;
  msg[n++] = 0;
  while (*cond && n < sizeof msg) msg[n++] = (unsigned char)*cond++;
  sys3(NR_write, a->status_fd, msg, n);
  for (;;) sys1(NR_exit_group, 127);
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

static void thread_entry(void *a, void *t) { become_thread(a, t); }

long rs_clone3(struct clone_args_v2 *ca, void (*fn)(void *, void *), void *x, void *y) {
  long ret;
  /* The child starts on its new stack with the parent's registers but
   * rax = 0; r12/r13/r14 carry its arguments and entry. */
  register long r12 __asm__("r12") = (long)x;
  register long r13 __asm__("r13") = (long)y;
  register long r14 __asm__("r14") = (long)fn;
  __asm__ volatile(
      "syscall\n"
      "test %%rax, %%rax\n"
      "jnz 1f\n"
      "mov %%r12, %%rdi\n"
      "mov %%r13, %%rsi\n"
      "and $-16, %%rsp\n"
      "call *%%r14\n"
      "ud2\n"
      "1:\n"
      : "=a"(ret)
      : "a"(NR_clone3), "D"(ca), "S"(sizeof *ca), "r"(r12), "r"(r13), "r"(r14)
      : "rcx", "r11", "rdx", "memory");
  return ret;
}

static long spawn_thread(const struct rs_args *a, const struct rs_thread *t) {
  int32_t tid = t->tid;
  struct clone_args_v2 ca = {0};
  ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
  ca.stack = t->stack_top - 16384;
  ca.stack_size = 16384;
  ca.set_tid = (uint64_t)(ulong)&tid;
  ca.set_tid_size = 1;
  /* Kernel quirk (Linux 6.15+, commit 7903f907a226 "pid: perform
   * free_pid() calls outside of tasklist_lock"): the last thread of a group
   * to exit tells the leader's parent under tasklist_lock and frees its own
   * tid only after dropping it (kernel/exit.c release_task). A parent that
   * reaps the leader and restores at once can find that tid still held for
   * a moment, though /proc (the preflight's check) no longer shows it:
   * clone3 set_tid fails with EEXIST. So EEXIST is tried again, 1 ms
   * apart, for up to 200 ms; a tid that is really taken still fails, that
   * much later (decision 254). */
  long r = -EEXIST_NR;
  for (unsigned attempt = 0; attempt < 200 && r == -EEXIST_NR; attempt++) {
    if (attempt > 0) {
      struct { long sec, nsec; } pause = {0, 1000000};
      sys2(NR_nanosleep, &pause, 0);
    }
    r = rs_clone3(&ca, thread_entry, (void *)a, (void *)t);
  }
  return r;
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
    if (r == -EEXIST_NR) fail_tid_taken(a, a->thread[i].tid);
    if (r < 0) fail(a, RS_CLONE, r);
  }
  unmap_all_but(a);
  move_special_mappings(a);
  map_memory(a);
  /* A memfd sealed with F_SEAL_FUTURE_WRITE keeps the writable shared
   * mappings made before the seal, but refuses new ones (mm/memfd.c:
   * memfd_check_seals_mmap, EPERM): imgtool left that seal (and F_SEAL_SEAL,
   * which would forbid adding it) to now, when the mappings are back. In
   * a tree none are left here: another process may map the same memfd
   * later, so imgtool adds them once all have mapped (decision 204). */
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
