/* Restore test for dirty tracking between dumps (`dump --parent`, issue
 * #11): a program that must not notice the dumper's userfaultfd-WP tracker
 * and whose every word must come back from a chain of tracked dumps.
 * Each time WORKDIR/stepN appears (N = generation + 1) it changes memory in
 * every way tracking must see or must not trust, then creates WORKDIR/doneN:
 *   A  8 MiB: one page in ten rewritten (a different tenth each generation)
 *   K  64 KiB: page N-1 filled by read() from a pipe (the kernel writes it)
 *   Q  64 KiB: unmapped and mapped again at the same address, new contents
 *      (generation 1; a new mapping where the parent had the old one)
 *   M  256 KiB: moved by mremap at generation 1 (it loses its registration),
 *      its first page rewritten at generation 2
 *   N  128 KiB: mapped at generation 1
 *   D  64 KiB: its first four pages dropped (MADV_DONTNEED) at generation 1
 *   Z  64 KiB: even pages filled at first, odd ones never touched; each
 *      generation drops one page, writes three scattered ones, then reads
 *      every page (what was never written or was dropped maps the zero
 *      page): runs of written, clean, dropped and zero pages side by side
 *      in one tracked range
 *   at generation 2, before its writes, it forks a child that scribbles
 *   over its own copy of A and exits.
 * After the go file it checks every word, and that it holds no
 * userfaultfd and no userfaultfd-registered mapping (a restored process
 * has no tracker).
 *   usage: restore_dirty_tracking GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096
#define A_PAGES 2048
#define K_PAGES 16
#define Q_PAGES 16
#define M_PAGES 64
#define N_PAGES 32
#define D_PAGES 16
#define Z_PAGES 16

volatile int generation;
static uint64_t *A, *K, *Q, *M, *N, *D, *Z;

static uint64_t pattern(uint64_t i, int seed) {
  uint64_t x = (i + 77 + (uint64_t)seed * 0x1234567) * 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 31);
}

static void fill(uint64_t *p, size_t pages, int seed) {
  for (size_t i = 0; i < pages * 512; i++) p[i] = pattern(i, seed);
}

/* The generation that last wrote page p of A when the memory is at gen. */
static int a_writer(size_t p, int gen) {
  for (int k = gen; k >= 1; k--)
    if ((p * 7 + (size_t)k) % 10 == 0) return k;
  return 0;
}

/* Z's pages written and dropped by generation k. */
static int z_written(size_t p, int k) {
  return p == (size_t)(3 * k) % Z_PAGES || p == (size_t)(3 * k + 5) % Z_PAGES || p == (size_t)(3 * k + 6) % Z_PAGES;
}
static int z_dropped(size_t p, int k) { return p == (size_t)(7 * k + 2) % Z_PAGES; }

static volatile uint64_t z_sum;

static void *map_anon(void *at, size_t pages) {
  void *p = mmap(at, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | (at ? MAP_FIXED : 0), -1, 0);
  if (p == MAP_FAILED) rt_die("mmap");
  return p;
}

static void advance(int gen) {
  if (gen == 1) {
    munmap(Q, Q_PAGES * PAGE);
    if (map_anon(Q, Q_PAGES) != Q) rt_die("mmap Q again");
    fill(Q, Q_PAGES, 1001);
    /* A place of its own for M, away from where it was. */
    void *to = mmap(NULL, M_PAGES * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (to == MAP_FAILED) rt_die("mmap M's new place");
    void *moved = mremap(M, M_PAGES * PAGE, M_PAGES * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    if (moved != to) rt_die("mremap M");
    M = moved;
    N = map_anon(NULL, N_PAGES);
    fill(N, N_PAGES, 3001);
    if (madvise(D, 4 * PAGE, MADV_DONTNEED) != 0) rt_die("madvise D");
  }
  if (gen == 2) {
    pid_t child = fork();
    if (child < 0) rt_die("fork");
    if (child == 0) {
      fill(A, A_PAGES, 99);
      _exit(0);
    }
    int st = 0;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) rt_die("child 0x%x", st);
    for (size_t i = 0; i < 512; i++) M[i] = pattern(i, 2002);
  }
  for (size_t p = 0; p < Z_PAGES; p++)
    if (z_dropped(p, gen) && madvise((char *)Z + p * PAGE, PAGE, MADV_DONTNEED) != 0) rt_die("madvise Z");
  for (size_t p = 0; p < Z_PAGES; p++)
    if (z_written(p, gen))
      for (size_t i = p * 512; i < (p + 1) * 512; i++) Z[i] = pattern(i, 6000 + gen);
  for (size_t i = 0; i < Z_PAGES * 512; i += 64) z_sum += Z[i];
  for (size_t p = 0; p < A_PAGES; p++)
    if (a_writer(p, gen) == gen)
      for (size_t i = p * 512; i < (p + 1) * 512; i++) A[i] = pattern(i, gen);
  if (gen <= K_PAGES) {
    /* read() into page gen-1 of K: the kernel's copy_to_user writes it. */
    int fds[2];
    if (pipe(fds) != 0) rt_die("pipe");
    uint64_t page[512];
    for (size_t i = 0; i < 512; i++) page[i] = pattern((size_t)(gen - 1) * 512 + i, 5000 + gen);
    if (write(fds[1], page, sizeof page) != (ssize_t)sizeof page) rt_die("write pipe");
    if (read(fds[0], K + (size_t)(gen - 1) * 512, PAGE) != PAGE) rt_die("read pipe");
    close(fds[0]);
    close(fds[1]);
  }
}

static size_t check(const char *what, const uint64_t *p, size_t pages, int (*seed_of)(size_t page, int gen),
                    int gen) {
  size_t bad = 0;
  for (size_t pg = 0; pg < pages; pg++) {
    int seed = seed_of(pg, gen);
    for (size_t i = pg * 512; i < (pg + 1) * 512; i++) {
      uint64_t want = seed < 0 ? 0 : pattern(i, seed);
      if (p[i] != want && bad++ < 5)
        rt_fail("%s word %zu (page %zu) is 0x%llx, expected 0x%llx", what, i, pg, (unsigned long long)p[i],
                (unsigned long long)want);
    }
  }
  return bad;
}

static int seed_a(size_t p, int gen) { return a_writer(p, gen); }
static int seed_k(size_t p, int gen) { return (int)p < gen ? 5000 + (int)p + 1 : 5000; }
static int seed_q(size_t p, int gen) { return gen >= 1 ? 1001 : 1000; }
static int seed_m(size_t p, int gen) { return gen >= 2 && p == 0 ? 2002 : 2000; }
static int seed_n(size_t p, int gen) { return 3001; }
static int seed_d(size_t p, int gen) { return gen >= 1 && p < 4 ? -1 : 4000; }
static int seed_z(size_t p, int gen) {
  for (int k = gen; k >= 1; k--) {
    if (z_written(p, k)) return 6000 + k;
    if (z_dropped(p, k)) return -1;
  }
  return p % 2 == 0 ? 6000 : -1;
}

/* No userfaultfd among the fds, no mapping registered with one. */
static void check_no_tracker(void) {
  char path[64], link[256];
  for (int fd = 0; fd < 4096; fd++) {
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, link, sizeof link - 1);
    if (n < 0) continue;
    link[n] = 0;
    RT_CHECK(strstr(link, "userfaultfd") == NULL, "fd %d is %s", fd, link);
  }
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) rt_die("smaps");
  char line[512];
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmFlags:", 8) == 0)
      RT_CHECK(strstr(line, " uw") == NULL && strstr(line, " um") == NULL, "a mapping is registered: %s", line);
  fclose(f);
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  const char *dir = argv[2];
  A = map_anon(NULL, A_PAGES);
  K = map_anon(NULL, K_PAGES);
  Q = map_anon(NULL, Q_PAGES);
  M = map_anon(NULL, M_PAGES);
  D = map_anon(NULL, D_PAGES);
  Z = map_anon(NULL, Z_PAGES);
  fill(A, A_PAGES, 0);
  fill(K, K_PAGES, 5000);
  fill(Q, Q_PAGES, 1000);
  fill(M, M_PAGES, 2000);
  fill(D, D_PAGES, 4000);
  for (size_t p = 0; p < Z_PAGES; p += 2)
    for (size_t i = p * 512; i < (p + 1) * 512; i++) Z[i] = pattern(i, 6000);
  printf("A %p\n", (void *)A);
  rt_ready();
  rt_serve_steps(argv[1], dir, &generation, advance);
  int gen = generation;
  size_t bad = check("A", A, A_PAGES, seed_a, gen) + check("K", K, K_PAGES, seed_k, gen) +
               check("Q", Q, Q_PAGES, seed_q, gen) + check("M", M, M_PAGES, seed_m, gen) +
               check("D", D, D_PAGES, seed_d, gen) + check("Z", Z, Z_PAGES, seed_z, gen);
  if (gen >= 1) bad += check("N", N, N_PAGES, seed_n, gen);
  RT_CHECK(bad == 0, "%zu words differ (at generation %d)", bad, gen);
  check_no_tracker();
  fprintf(stderr, "generation %d checked\n", gen);
  return rt_finish();
}
