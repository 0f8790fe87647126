/* Restore test for incremental chains of a process tree (issue #11): the
 * root fills 16 MiB of private memory with a pattern and forks children 1
 * and 2, which share it copy-on-write. Each time WORKDIR/stepN appears
 * every live process rewrites one page in ten of it (a different tenth per
 * process and generation) and creates WORKDIR/doneN_K (K: 0 root, 1..3
 * children). At step 1 the root also forks child 3 (new in the second link;
 * its pid goes to WORKDIR/child3); at step 2 child 2 exits and the root
 * reaps it (absent from the third link). After the go file every process
 * checks every word against what the generations it lived through wrote;
 * the children report through their exit status. A 4 MiB MAP_SHARED|
 * MAP_ANONYMOUS region, mapped before the forks, is shared by all: only
 * the root rewrites one page in ten of it per generation, and the root and
 * children 1 and 3 check it at the end (an incremental link stores only
 * those pages of it).
 *   usage: restore_tree_incremental GOFILE WORKDIR
 * Prints "pids R C1 C2", "region ADDR", then "ready". */
#include "rt_prog.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define REGION_BYTES (16ul << 20)
#define PAGES (REGION_BYTES / 4096)
#define WORDS (REGION_BYTES / sizeof(uint64_t))
#define SHARED_BYTES (4ul << 20)
#define SHARED_PAGES (SHARED_BYTES / 4096)
#define SHARED_WRITER 9 /* the pattern's "process" for the shared region */

/* Read by the tests through gdb: the generation this process is at. */
volatile int generation;
static int me;              /* 0 root, 1..3 children */
static int born_at[4];      /* the generation each process was forked at */
static uint64_t *region;
static uint64_t *shared; /* MAP_SHARED: every process sees the root's writes */

static uint64_t pattern(uint64_t i, int k, int gen) {
  uint64_t x = (i + 91 + (uint64_t)gen * 0x1234567 + (uint64_t)k * 0xabcdef01ull) * 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 29);
}

/* Whether process k rewrites page p at generation gen. */
static int writes(size_t p, int k, int gen) { return (p * 7 + (size_t)gen + (size_t)k * 3) % 10 == 0; }

/* What word i of page p of process k holds at generation gen: its own
 * latest write since it was forked, else the root's as of that fork. */
static uint64_t expected(uint64_t i, size_t p, int k, int gen) {
  int from = k ? born_at[k] : 0;
  for (int g = gen; g > from; g--)
    if (writes(p, k, g)) return pattern(i, k, g);
  if (k) return expected(i, p, 0, from);
  return pattern(i, 0, 0);
}

static void advance(int gen) {
  for (size_t p = 0; p < PAGES; p++)
    if (writes(p, me, gen))
      for (size_t i = p * 512; i < (p + 1) * 512; i++) region[i] = pattern(i, me, gen);
  if (me == 0)
    for (size_t p = 0; p < SHARED_PAGES; p++)
      if (writes(p, SHARED_WRITER, gen))
        for (size_t i = p * 512; i < (p + 1) * 512; i++) shared[i] = pattern(i, SHARED_WRITER, gen);
}

/* The shared region as the root left it at generation gen. */
static uint64_t check_shared(int gen) {
  uint64_t bad = 0;
  for (size_t p = 0; p < SHARED_PAGES; p++)
    for (size_t i = p * 512; i < (p + 1) * 512; i++) {
      uint64_t want = pattern(i, SHARED_WRITER, 0);
      for (int g = gen; g > 0; g--)
        if (writes(p, SHARED_WRITER, g)) {
          want = pattern(i, SHARED_WRITER, g);
          break;
        }
      if (shared[i] != want && bad++ == 0)
        rt_fail("process %d (%d) at generation %d: shared word %zu is 0x%" PRIx64 ", not 0x%" PRIx64, (int)getpid(),
                me, gen, i, shared[i], want);
    }
  return bad;
}

static uint64_t check(void) {
  uint64_t bad = 0;
  for (size_t p = 0; p < PAGES; p++)
    for (size_t i = p * 512; i < (p + 1) * 512; i++) {
      uint64_t want = expected(i, p, me, generation);
      if (region[i] != want && bad++ == 0)
        rt_fail("process %d (%d) at generation %d: word %zu is 0x%" PRIx64 ", not 0x%" PRIx64, (int)getpid(), me,
                generation, i, region[i], want);
    }
  return bad;
}

static void touch(const char *dir, int gen) {
  char path[4096];
  snprintf(path, sizeof path, "%s/done%d_%d", dir, gen, me);
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) rt_die("create %s", path);
  close(fd);
}

static pid_t kids[4];

/* A child's life: steps until the go file, then its check. Child 2 exits
 * at step 2 (after checking itself). */
static void serve(const char *gofile, const char *dir) {
  char path[4096];
  while (access(gofile, F_OK) != 0) {
    snprintf(path, sizeof path, "%s/step%d", dir, generation + 1);
    if (access(path, F_OK) == 0) {
      int gen = generation + 1;
      if (me == 2 && gen == 2) _exit(check() ? 1 : 0);
      advance(gen);
      generation = gen;
      if (me == 0 && gen == 1) {
        born_at[3] = 1;
        fflush(stdout);
        kids[3] = fork();
        if (kids[3] < 0) rt_die("fork");
        if (kids[3] == 0) {
          me = 3;
          continue;  /* at generation 1, as the root was */
        }
        char file[4096];
        snprintf(file, sizeof file, "%s/child3", dir);
        FILE *f = fopen(file, "w");
        if (!f) rt_die("create %s", file);
        fprintf(f, "%d\n", (int)kids[3]);
        fclose(f);
      }
      if (me == 0 && gen == 2) {
        int st = 0;
        if (waitpid(kids[2], &st, 0) != kids[2]) rt_die("waitpid child 2");
        RT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child 2 found its memory wrong before exiting (0x%x)", st);
      }
      touch(dir, gen);
    }
    rt_sleep_ms(5);
  }
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  const char *dir = argv[2];
  region = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) rt_die("mmap");
  for (size_t i = 0; i < WORDS; i++) region[i] = pattern(i, 0, 0);
  shared = mmap(NULL, SHARED_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) rt_die("mmap shared");
  for (size_t i = 0; i < SHARED_BYTES / sizeof(uint64_t); i++) shared[i] = pattern(i, SHARED_WRITER, 0);
  fflush(stdout);
  for (int k = 1; k <= 2; k++) {
    kids[k] = fork();
    if (kids[k] < 0) rt_die("fork");
    if (kids[k] == 0) {
      me = k;
      break;
    }
  }
  if (me == 0) {
    printf("pids %d %d %d\n", (int)getpid(), (int)kids[1], (int)kids[2]);
    printf("region %p\n", (void *)region);
    rt_ready();
  }
  serve(argv[1], dir);
  if (me) _exit(check() + check_shared(generation) ? 1 : 0);
  RT_CHECK(check() == 0, "the root's memory differs");
  RT_CHECK(check_shared(generation) == 0, "the shared region differs in the root");
  for (int k = 1; k <= 3; k++) {
    if ((k == 2 && generation >= 2) || (k == 3 && generation < 1)) continue;
    int st = 0;
    if (waitpid(kids[k], &st, 0) != kids[k]) rt_die("waitpid child %d", k);
    RT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d: memory differs after restore (status 0x%x)", k, st);
  }
  fprintf(stderr, "generation %d checked in every process\n", generation);
  return rt_finish();
}
