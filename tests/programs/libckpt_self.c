/* libckpt test program: a process checkpointing itself (ckpt_checkpoint)
 * and leaving pages out of its checkpoints (ckpt_exclude).
 *   usage: libckpt_self GOFILE WORKDIR MODE ARGS
 * MODE:
 *   checkpoint IMAGE  heap, stack, TLS, an fd offset and a counting second
 *                     thread; ckpt_checkpoint(IMAGE, 0). The original prints
 *                     "id N" and "original_ok 1" after checking itself and
 *                     exits 0; the restored copy (0 returned) waits for the
 *                     go file and checks the same state.
 *   kill IMAGE        the same with CKPT_KILL ("ready" comes first: the
 *                     original must not return).
 *   exclude A B       checkpoints A, then excludes a 16 MiB read-write and
 *                     an 8 MiB read-only filled range and checkpoints B. The
 *                     copy restored from B finds both zero-filled with their
 *                     protection, fills the first again and checkpoints
 *                     B.again, which must be as small as B.
 *   outside           excludes a 32 MiB filled range and says ready, for
 *                     `imgtool dump` from outside; the restored copy checks
 *                     it zero-filled and writable.
 *   fail              failure paths; prints "KEY value" lines (see
 *                     libckpt_test.cc) and exits after "ready".
 *   helperkilled IMAGE  384 MiB to dump; the test SIGKILLs the helper while
 *                     it writes: prints "helperkilled R", "leftover_files N".
 *   concurrent A B    two threads checkpoint at once; prints "ids IDA IDB".
 *   exec IMAGE        ckpt_checkpoint(IMAGE, CKPT_EXEC); prints "exec R".
 *   sysvshm IMAGE     attaches a 3-page SysV shm segment of the host's
 *                     namespace (IPC_PRIVATE, filled, marked for removal,
 *                     printed as "shmid N"), then ckpt_checkpoint(IMAGE,
 *                     CKPT_KILL); the restored copy finds the segment at the
 *                     same address with the same id, size and bytes.
 *   sysvshm-run IMAGE the same without CKPT_KILL: the original prints "id N"
 *                     and exits (its last detach removes the segment). */
#include "rt_prog.h"

#include <ckpt/ckpt.h>

#include <dirent.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define HEAP_WORDS (128 * 1024)
#define STACK_WORDS 512
#define FD_OFFSET 37

static void reap_all(int sig);
static volatile uint64_t counter;
static volatile int worker_tls_broken;
static __thread uint64_t tls_value;
static uint64_t *heap;
static int data_fd = -1;
static char data_bytes[100];

static void *count(void *arg) {
  tls_value = 0x2222222222222222ull;
  for (;;) {
    counter++;
    if (tls_value != 0x2222222222222222ull) worker_tls_broken = 1;
  }
  return arg;
}

static uint64_t heap_sum(void) {
  uint64_t s = 0;
  for (size_t i = 0; i < HEAP_WORDS; i++) s = s * 31 + heap[i];
  return s;
}

static void fill(void *p, size_t len, uint64_t seed) {
  uint64_t *w = p;
  for (size_t i = 0; i < len / 8; i++) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    w[i] = seed;
  }
}

static int all_zero(const void *p, size_t len) {
  const uint64_t *w = p;
  for (size_t i = 0; i < len / 8; i++)
    if (w[i]) return 0;
  return 1;
}

/* The perms column of the mapping holding addr, e.g. "rw-p". */
static void perms_of(const void *addr, char out[5]) {
  strcpy(out, "?");
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) return;
  char line[4200];
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && lo <= (uintptr_t)addr && (uintptr_t)addr < hi) {
      memcpy(out, perms, 4);
      out[4] = 0;
    }
  }
  fclose(f);
}

static void wait_for_counting(uint64_t from) {
  double until = rt_now(CLOCK_MONOTONIC) + 10;
  while (counter < from + 100000 && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(1);
  RT_CHECK(counter >= from + 100000, "the counting thread stopped at %llu", (unsigned long long)counter);
}

static void set_up_state(const char *workdir) {
  heap = malloc(HEAP_WORDS * 8);
  if (!heap) rt_die("malloc");
  fill(heap, HEAP_WORDS * 8, 99);
  char path[4096];
  snprintf(path, sizeof path, "%s/data", workdir);
  data_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (data_fd < 0) rt_die("open %s", path);
  for (int i = 0; i < 100; i++) data_bytes[i] = (char)('A' + i % 26);
  if (write(data_fd, data_bytes, 100) != 100 || lseek(data_fd, FD_OFFSET, SEEK_SET) != FD_OFFSET) rt_die("data");
  tls_value = 0x1111111111111111ull;
  pthread_t t;
  if (pthread_create(&t, NULL, count, NULL) != 0) rt_die("pthread_create");
  while (counter < 1000) rt_sleep_ms(1);
}

/* Heap, the caller's stack, both threads' TLS, the fd offset, the thread. */
static void check_state(uint64_t want_heap, const uint64_t *stack_words, const char *who) {
  RT_CHECK(heap_sum() == want_heap, "%s: heap checksum differs", who);
  for (int i = 0; i < STACK_WORDS; i++)
    if (stack_words[i] != (uint64_t)i * 0x9e3779b97f4a7c15ull) {
      rt_fail("%s: stack word %d differs", who, i);
      break;
    }
  RT_CHECK(tls_value == 0x1111111111111111ull, "%s: main thread TLS is %llx", who, (unsigned long long)tls_value);
  RT_CHECK(!worker_tls_broken, "%s: the worker's TLS changed", who);
  off_t at = lseek(data_fd, 0, SEEK_CUR);
  RT_CHECK(at == FD_OFFSET, "%s: fd offset is %lld, not %d", who, (long long)at, FD_OFFSET);
  char c = 0;
  RT_CHECK(pread(data_fd, &c, 1, at) == 1 && c == data_bytes[FD_OFFSET], "%s: the file's byte at the offset", who);
  wait_for_counting(counter);
}

/* Signals at the caller all through the call (no SA_RESTART): the call
 * must neither fail with EINTR nor lose them; they arrive after it. */
static volatile int usr1_count;
static pid_t main_tid;
static void on_usr1(int sig) { usr1_count++; }
static void *signal_caller(void *arg) {
  for (;;) {
    syscall(SYS_tgkill, getpid(), main_tid, SIGUSR1);
    rt_sleep_ms(1);
  }
  return arg;
}

static void expect_signals_arrive(const char *who) {
  int from = usr1_count;
  double until = rt_now(CLOCK_MONOTONIC) + 5;
  while (usr1_count == from && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(1);
  RT_CHECK(usr1_count > from, "%s: SIGUSR1 at the caller no longer arrives", who);
}

static int mode_checkpoint(char **argv, unsigned flags) {
  set_up_state(argv[2]);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  main_tid = gettid();
  pthread_t signaller;
  if (pthread_create(&signaller, NULL, signal_caller, NULL) != 0) rt_die("pthread_create");
  while (usr1_count == 0) rt_sleep_ms(1);
  uint64_t want_heap = heap_sum();
  volatile uint64_t stack_words[STACK_WORDS];
  for (int i = 0; i < STACK_WORDS; i++) stack_words[i] = (uint64_t)i * 0x9e3779b97f4a7c15ull;
  signal(SIGCHLD, reap_all); /* it may reap the helper: the id still comes */
  if (flags & CKPT_KILL) rt_ready();
  long r = ckpt_checkpoint(argv[4], flags);
  if (r > 0) {
    if (flags & CKPT_KILL) {
      rt_fail("ckpt_checkpoint with CKPT_KILL returned %ld in the original", r);
      return 3;
    }
    printf("id %ld\n", r);
    check_state(want_heap, (const uint64_t *)stack_words, "original");
    expect_signals_arrive("original");
    printf("original_ok %d\n", rt_failures == 0);
    rt_ready();
    return 0;
  }
  if (r < 0) {
    fprintf(stderr, "setup: ckpt_checkpoint: %s\n", strerror((int)-r));
    return 4;
  }
  rt_wait_go(argv[1]);
  check_state(want_heap, (const uint64_t *)stack_words, "restored");
  expect_signals_arrive("restored");
  return rt_finish();
}

static int mode_sysvshm(char **argv, unsigned flags) {
  const size_t len = 3 * 4096;
  int id = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600);
  if (id < 0) rt_die("shmget");
  unsigned char *p = shmat(id, NULL, 0);
  if (p == (void *)-1) rt_die("shmat");
  fill(p, len, 1234);
  /* Gone with its last detach: the killed original's. */
  if (shmctl(id, IPC_RMID, NULL) != 0) rt_die("IPC_RMID");
  unsigned char *want = malloc(len);
  if (!want) rt_die("malloc");
  fill(want, len, 1234);
  printf("shmid %d\n", id);
  rt_ready();
  long r = ckpt_checkpoint(argv[4], flags);
  if (r > 0 && !(flags & CKPT_KILL)) {
    printf("id %ld\n", r);
    fflush(stdout);
    return 0;
  }
  if (r != 0) {
    fprintf(stderr, "setup: ckpt_checkpoint returned %ld%s%s\n", r, r < 0 ? ": " : "", r < 0 ? strerror((int)-r) : "");
    return 4;
  }
  rt_wait_go(argv[1]);
  struct shmid_ds ds;
  RT_CHECK(shmctl(id, IPC_STAT, &ds) == 0, "segment %d: IPC_STAT: %s", id, strerror(errno));
  RT_CHECK(ds.shm_segsz == len, "segment %d: %zu bytes", id, (size_t)ds.shm_segsz);
  RT_CHECK(ds.shm_nattch == 1, "segment %d: %d attaches", id, (int)ds.shm_nattch);
  RT_CHECK(memcmp(p, want, len) == 0, "segment %d: its bytes differ", id);
  p[0] ^= 1; /* still writable */
  RT_CHECK(shmdt(p) == 0, "shmdt: %s", strerror(errno));
  return rt_finish();
}

static long blocks_of(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_blocks * 512 : -1;
}

static int mode_exclude(char **argv) {
  const size_t rw_len = 16u << 20, ro_len = 8u << 20;
  char *rw = mmap(NULL, rw_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *ro = mmap(NULL, ro_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (rw == MAP_FAILED || ro == MAP_FAILED) rt_die("mmap");
  fill(rw, rw_len, 1);
  fill(ro, ro_len, 2);
  if (mprotect(ro, ro_len, PROT_READ) < 0) rt_die("mprotect");
  long a = ckpt_checkpoint(argv[4], 0);
  if (a <= 0) rt_die("checkpoint A returned %ld", a);
  int e1 = ckpt_exclude(rw, rw_len), e2 = ckpt_exclude(ro, ro_len - 100); /* rounded up to the page */
  if (e1 || e2) rt_die("ckpt_exclude: %d %d", e1, e2);
  long b = ckpt_checkpoint(argv[5], 0);
  if (b > 0) {
    printf("ids %ld %ld\n", a, b);
    rt_ready();
    return 0;
  }
  if (b < 0) rt_die("checkpoint B returned %ld", b);
  rt_wait_go(argv[1]);
  char perms[5];
  RT_CHECK(all_zero(rw, rw_len), "the excluded read-write range is not zero-filled");
  RT_CHECK(all_zero(ro, ro_len), "the excluded read-only range is not zero-filled");
  perms_of(rw, perms);
  RT_CHECK(strcmp(perms, "rw-p") == 0, "the read-write range came back %s", perms);
  perms_of(ro, perms);
  RT_CHECK(strcmp(perms, "r--p") == 0, "the read-only range came back %s", perms);
  /* The table came back too: a later checkpoint still leaves them out. */
  fill(rw, rw_len, 3);
  char again[4096];
  snprintf(again, sizeof again, "%s.again", argv[5]);
  long c = ckpt_checkpoint(again, 0);
  RT_CHECK(c > 0, "checkpoint of the restored copy returned %ld", c);
  long size_b = blocks_of(argv[5]), size_c = blocks_of(again);
  RT_CHECK(size_c > 0 && size_c < size_b + (2l << 20), "B.again holds %ld bytes, B %ld: the exclusion was lost",
           size_c, size_b);
  return rt_finish();
}

static int mode_outside(char **argv) {
  const size_t len = 32u << 20;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) rt_die("mmap");
  fill(p, len, 4);
  int e = ckpt_exclude(p, len);
  if (e) rt_die("ckpt_exclude: %d", e);
  printf("excluded %p\n", (void *)p);
  rt_ready();
  rt_wait_go(argv[1]);
  char perms[5];
  RT_CHECK(all_zero(p, len), "the excluded range is not zero-filled");
  perms_of(p, perms);
  RT_CHECK(strcmp(perms, "rw-p") == 0, "the excluded range came back %s", perms);
  p[12345] = 1; /* still writable */
  return rt_finish();
}

static volatile int sigchld_count;
static void on_sigchld(int sig) { sigchld_count++; }
/* What many daemons do; it takes libckpt's helper too. */
static void reap_all(int sig) {
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int count_leftover_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strstr(e->d_name, "bad.core") || strstr(e->d_name, ".tmp-")) n++;
  closedir(d);
  return n;
}

static int mode_fail(char **argv) {
  set_up_state(argv[2]);
  char path[4096];
  snprintf(path, sizeof path, "%s/bad.core", argv[2]);
  printf("notdir %ld\n", ckpt_checkpoint("/etc/passwd/bad.core", 0));
  printf("nodir %ld\n", ckpt_checkpoint("/nonexistent-dir/bad.core", 0));
  printf("badflags %ld\n", ckpt_checkpoint(path, 0x80));
  /* ckpt_exclude takes page-aligned private anonymous memory only. */
  long page = sysconf(_SC_PAGESIZE);
  char *anon = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *file = mmap(NULL, page, PROT_READ, MAP_PRIVATE, data_fd, 0);
  if (anon == MAP_FAILED || file == MAP_FAILED) rt_die("mmap");
  munmap(anon + 2 * page, page);
  printf("exclude_unaligned %d\n", ckpt_exclude(anon + 1, page));
  printf("exclude_file %d\n", ckpt_exclude(file, page));
  printf("exclude_hole %d\n", ckpt_exclude(anon, 4 * page));
  printf("exclude_ok %d\n", ckpt_exclude(anon, 2 * page));
  const char *imgtool = getenv("CKPT_IMGTOOL");
  char *saved = imgtool ? strdup(imgtool) : NULL;
  setenv("CKPT_IMGTOOL", "/nonexistent/imgtool", 1);
  printf("noimgtool %ld\n", ckpt_checkpoint(path, 0));
  /* A helper that dies without a result, with a child of ours waiting to
   * be reaped: the library must reap only its own helper. */
  signal(SIGCHLD, on_sigchld);
  pid_t child = fork();
  if (child == 0) _exit(7);
  while (sigchld_count == 0) rt_sleep_ms(1);
  setenv("CKPT_IMGTOOL", "/bin/false", 1);
  printf("helperdied %ld\n", ckpt_checkpoint(path, 0));
  int status = 0;
  printf("child_status %d\n", waitpid(child, &status, 0) == child && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  /* The same with a SIGCHLD handler that reaps every child (the helper). */
  signal(SIGCHLD, reap_all);
  printf("helperreaped %ld\n", ckpt_checkpoint(path, 0));
  signal(SIGCHLD, SIG_DFL);
  if (saved) setenv("CKPT_IMGTOOL", saved, 1);
  /* imgtool refuses what restore cannot bring back (a netlink socket). */
  int sock = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  if (sock < 0) rt_die("socket");
  printf("refused %ld\n", ckpt_checkpoint(path, 0));
  close(sock);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int w = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | __WALL);
  printf("leftover_children %d\n", w < 0 && errno == ECHILD ? 0 : 1);
  printf("leftover_files %d\n", count_leftover_files(argv[2]));
  uint64_t from = counter;
  wait_for_counting(from);
  printf("thread_runs %d\n", counter >= from + 100000);
  rt_ready();
  return 0;
}

/* The test SIGKILLs the helper while it writes the image. */
static int mode_helper_killed(char **argv) {
  const size_t len = 384u << 20;
  char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) rt_die("mmap");
  memset(p, 1, len);
  printf("helperkilled %ld\n", ckpt_checkpoint(argv[4], 0));
  DIR *d = opendir(argv[2]);
  int left = 0;
  for (struct dirent *e; d && (e = readdir(d));)
    if (strstr(e->d_name, "img.core")) left++;
  if (d) closedir(d);
  printf("leftover_files %d\n", left);
  siginfo_t si;
  memset(&si, 0, sizeof si);
  printf("leftover_children %d\n", waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0 && errno == ECHILD ? 0 : 1);
  rt_ready();
  return 0;
}

static void *checkpoint_thread(void *path) { return (void *)ckpt_checkpoint(path, 0); }

/* Two threads checkpoint at once: both must succeed (one waits). */
static int mode_concurrent(char **argv) {
  pthread_t a, b;
  void *ra, *rb;
  if (pthread_create(&a, NULL, checkpoint_thread, argv[4]) || pthread_create(&b, NULL, checkpoint_thread, argv[5]))
    rt_die("pthread_create");
  pthread_join(a, &ra);
  pthread_join(b, &rb);
  if ((long)ra == 0 || (long)rb == 0) { /* a restored copy: not restored by the test */
    rt_wait_go(argv[1]);
    return rt_finish();
  }
  printf("ids %ld %ld\n", (long)ra, (long)rb);
  rt_ready();
  return 0;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  const char *mode = argv[3];
  if (strcmp(mode, "checkpoint") == 0 && argc == 5) return mode_checkpoint(argv, 0);
  if (strcmp(mode, "kill") == 0 && argc == 5) return mode_checkpoint(argv, CKPT_KILL);
  if (strcmp(mode, "exclude") == 0 && argc == 6) return mode_exclude(argv);
  if (strcmp(mode, "outside") == 0) return mode_outside(argv);
  if (strcmp(mode, "fail") == 0) return mode_fail(argv);
  if (strcmp(mode, "concurrent") == 0 && argc == 6) return mode_concurrent(argv);
  if (strcmp(mode, "helperkilled") == 0 && argc == 5) return mode_helper_killed(argv);
  if (strcmp(mode, "sysvshm") == 0 && argc == 5) return mode_sysvshm(argv, CKPT_KILL);
  if (strcmp(mode, "sysvshm-run") == 0 && argc == 5) return mode_sysvshm(argv, 0);
  if (strcmp(mode, "exec") == 0 && argc == 5) {
    long r = ckpt_checkpoint(argv[4], CKPT_EXEC);
    if (r == 0) {
      rt_wait_go(argv[1]);
      return rt_finish();
    }
    printf("exec %ld\n", r);
    rt_ready();
    return 0;
  }
  fprintf(stderr, "bad mode %s\n", mode);
  return 92;
}
