/* Restore test: MAP_SHARED|MAP_ANONYMOUS memory of a forked tree, stored
 * once (issue 9, FORMAT.md §9.23). The parent maps A (32 MiB) and B
 * (4 MiB) shared anonymous, fills both, and forks 3 children:
 *   child 0 keeps A and B whole and writes B's second half;
 *   child 1 unmaps B and moves A to another address (mremap);
 *   child 2 unmaps B and A's first 8 MiB (it maps only part of A);
 * child k writes its 1 MiB window of A, [k * 8 MiB + 1 MiB, + 1 MiB), and
 * the parent then unmaps A's last 2 MiB, which the children still map
 * (so some of A is stored by child 0, not by the parent). Every process
 * sees every write (the memory is shared). After restore every process
 * checks every word it maps, that maps names the memory
 * "/dev/zero (deleted)", and that it is still shared: the parent writes a
 * token into A (and B) that each child must see and answer.
 *   usage: restore_shared_anon_tree GOFILE WORKDIR
 * Prints "pids P C0 C1 C2", "region ADDR" (the parent's A),
 * "moved_word_addr ADDR" and "moved_word_value V" (a word of A at child
 * 1's address, for gdb), then "ready". */
#include "rt_prog.h"

#include <inttypes.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define MIB (1ul << 20)
#define A_BYTES (32 * MIB)
#define B_BYTES (4 * MIB)
#define WINDOW_BYTES MIB
#define CHILDREN 3
#define A_WORDS (A_BYTES / sizeof(uint64_t))
#define B_WORDS (B_BYTES / sizeof(uint64_t))
#define PARENT_KEEPS (30 * MIB)        /* the parent unmaps A's last 2 MiB */
#define CHILD2_FROM (8 * MIB)          /* child 2 unmaps A's first 8 MiB */
#define HANDSHAKE (20 * MIB / sizeof(uint64_t)) /* A's words: token, then an answer per child */
#define TOKEN 0x70c3e11ull

static uint64_t a_word(uint64_t i) { return (i * 0x9e3779b97f4a7c15ull) ^ 0x5a4edull; }
static uint64_t window_word(uint64_t i, int k) { return (i * 0xff51afd7ed558ccdull) + (uint64_t)(k + 1); }
static uint64_t b_word(uint64_t i) { return (i * 0xc4ceb9fe1a85ec53ull) ^ 0xbbull; }
static uint64_t b_child_word(uint64_t i) { return ~b_word(i); }
static uint64_t window_first(int k) { return ((uint64_t)k * 8 * MIB + WINDOW_BYTES) / sizeof(uint64_t); }

/* What word i of A holds: child k's window has its pattern. */
static uint64_t a_want(uint64_t i) {
  for (int k = 0; k < CHILDREN; k++)
    if (i >= window_first(k) && i < window_first(k) + WINDOW_BYTES / sizeof(uint64_t)) return window_word(i, k);
  return a_word(i);
}

/* Checks A's words [first, end) as mapped at `a` (a[i] is word i of A);
 * the handshake words may already hold the token or an answer. */
static uint64_t check_a(const volatile uint64_t *a, uint64_t first, uint64_t end, const char *who) {
  uint64_t bad = 0;
  for (uint64_t i = first; i < end; i++) {
    if (i >= HANDSHAKE && i <= HANDSHAKE + CHILDREN) continue;
    if (a[i] != a_want(i) && bad++ == 0)
      rt_fail("%s (%d): word %" PRIu64 " of A is 0x%" PRIx64 ", not 0x%" PRIx64, who, (int)getpid(), i, a[i],
              a_want(i));
  }
  return bad;
}

static uint64_t check_b(const volatile uint64_t *b, const char *who) {
  uint64_t bad = 0;
  for (uint64_t i = 2; i < B_WORDS; i++) { /* words 0 and 1: B's handshake */
    uint64_t want = i >= B_WORDS / 2 ? b_child_word(i) : b_word(i);
    if (b[i] != want && bad++ == 0)
      rt_fail("%s (%d): word %" PRIu64 " of B is 0x%" PRIx64 ", not 0x%" PRIx64, who, (int)getpid(), i, b[i], want);
  }
  return bad;
}

/* 1 if /proc/self/maps shows the mapping at addr as shared anonymous
 * memory: perms "rw-s", path "/dev/zero (deleted)". */
static int is_dev_zero(const void *addr) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[1024];
  int found = 0;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long s, e;
    char perms[8];
    if (sscanf(line, "%lx-%lx %7s", &s, &e, perms) != 3 || (uintptr_t)addr < s || (uintptr_t)addr >= e) continue;
    found = perms[3] == 's' && strstr(line, "/dev/zero (deleted)") != NULL;
    if (!found) fprintf(stderr, "maps: %s", line);
  }
  if (f) fclose(f);
  return found;
}

/* Waits (10 s at most) until *w holds `want`. */
static int wait_for(const volatile uint64_t *w, uint64_t want) {
  double until = rt_now(CLOCK_MONOTONIC) + 10;
  while (*w != want && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(1);
  return *w == want;
}

struct setup_done {
  int k;
  uint64_t a_at; /* where this child maps word 0 of A */
};

/* Child k after the restore: its checks, then the handshake. */
static int child_after(int k, volatile uint64_t *a, uint64_t first, volatile uint64_t *b) {
  char who[16];
  snprintf(who, sizeof who, "child %d", k);
  uint64_t bad = check_a(a, first, A_WORDS, who);
  RT_CHECK(is_dev_zero((const void *)&a[first]), "%s: A is not shared anonymous memory after restore", who);
  if (b) {
    bad += check_b(b, who);
    RT_CHECK(is_dev_zero((const void *)b), "%s: B is not shared anonymous memory after restore", who);
    RT_CHECK(wait_for(&b[0], TOKEN), "%s: the parent's token never showed in B: not shared after restore", who);
    b[1] = TOKEN + 1;
  }
  RT_CHECK(wait_for(&a[HANDSHAKE], TOKEN), "%s: the parent's token never showed in A: not shared after restore", who);
  a[HANDSHAKE + 1 + k] = TOKEN + 1 + (uint64_t)k;
  return bad || rt_failures ? 1 : 0;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  volatile uint64_t *a = mmap(NULL, A_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  volatile uint64_t *b = mmap(NULL, B_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (a == MAP_FAILED || b == MAP_FAILED) rt_die("mmap");
  for (uint64_t i = 0; i < A_WORDS; i++) a[i] = a_word(i);
  for (uint64_t i = 0; i < B_WORDS; i++) b[i] = b_word(i);
  int done[2]; /* each child says here that its setup is complete */
  if (pipe(done) != 0) rt_die("pipe");
  pid_t kids[CHILDREN];
  for (int k = 0; k < CHILDREN; k++) {
    kids[k] = fork();
    if (kids[k] < 0) rt_die("fork");
    if (kids[k] != 0) continue;
    close(done[0]);
    volatile uint64_t *mine = a, *my_b = b;
    uint64_t first = 0;
    if (k == 0) {
      for (uint64_t i = B_WORDS / 2; i < B_WORDS; i++) b[i] = b_child_word(i);
    } else {
      munmap((void *)b, B_BYTES);
      my_b = NULL;
    }
    if (k == 1) {
      /* Elsewhere: a fresh reservation, A moved onto it. */
      void *to = mmap(NULL, A_BYTES + 64 * MIB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (to == MAP_FAILED) rt_die("mmap");
      void *moved = mremap((void *)a, A_BYTES, A_BYTES, MREMAP_MAYMOVE | MREMAP_FIXED, (char *)to + 32 * MIB);
      if (moved == MAP_FAILED) rt_die("mremap");
      mine = moved;
    }
    if (k == 2) {
      munmap((void *)a, CHILD2_FROM);
      first = CHILD2_FROM / sizeof(uint64_t);
    }
    for (uint64_t i = window_first(k); i < window_first(k) + WINDOW_BYTES / sizeof(uint64_t); i++)
      mine[i] = window_word(i, k);
    struct setup_done d = {k, (uint64_t)(uintptr_t)mine};
    if (write(done[1], &d, sizeof d) != (ssize_t)sizeof d) _exit(2);
    close(done[1]);
    rt_wait_go(argv[1]);
    _exit(child_after(k, mine, first, my_b));
  }
  close(done[1]);
  uint64_t moved_at = 0;
  for (int n = 0; n < CHILDREN; n++) {
    struct setup_done d;
    if (read(done[0], &d, sizeof d) != (ssize_t)sizeof d) rt_die("a child did not finish its setup");
    if (d.k == 1) moved_at = d.a_at;
  }
  close(done[0]);
  /* A's last 2 MiB: only the children map them now. */
  if (munmap((char *)a + PARENT_KEEPS, A_BYTES - PARENT_KEEPS) != 0) rt_die("munmap");
  printf("pids %d %d %d %d\n", (int)getpid(), (int)kids[0], (int)kids[1], (int)kids[2]);
  uint64_t w = 5 * MIB / sizeof(uint64_t) + 3; /* outside every window */
  printf("region %p\nmoved_word_addr 0x%" PRIx64 "\nmoved_word_value 0x%" PRIx64 "\n", (void *)a,
         moved_at + w * sizeof(uint64_t), a[w]);
  rt_ready();
  rt_wait_go(argv[1]);
  check_a(a, 0, PARENT_KEEPS / sizeof(uint64_t), "parent");
  check_b(b, "parent");
  RT_CHECK(is_dev_zero((const void *)a), "parent: A is not shared anonymous memory after restore");
  RT_CHECK(is_dev_zero((const void *)b), "parent: B is not shared anonymous memory after restore");
  /* Still shared: every child sees the token and answers through A. */
  a[HANDSHAKE] = TOKEN;
  b[0] = TOKEN;
  for (int k = 0; k < CHILDREN; k++)
    RT_CHECK(wait_for(&a[HANDSHAKE + 1 + k], TOKEN + 1 + (uint64_t)k),
             "child %d never answered through A: not shared after restore", k);
  RT_CHECK(wait_for(&b[1], TOKEN + 1), "child 0 never answered through B: not shared after restore");
  for (int k = 0; k < CHILDREN; k++) {
    int st = 0;
    RT_CHECK(waitpid(kids[k], &st, 0) == kids[k] && WIFEXITED(st) && WEXITSTATUS(st) == 0,
             "child %d (%d): status 0x%x (1: a check failed after restore)", k, (int)kids[k], st);
  }
  return rt_finish();
}
