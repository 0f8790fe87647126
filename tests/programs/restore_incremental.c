/* Restore test for incremental chains: MIB of patterned anonymous memory;
 * each time WORKDIR/stepN appears (N = generation + 1) it rewrites one page
 * in ten (a different tenth each generation), then creates WORKDIR/doneN.
 * After the go file it checks every word against what the generations it
 * went through wrote: a restore from the last link of a chain must bring
 * back pages from every link. PERCENT (bench/incremental_bench.sh) makes
 * each generation rewrite that share of the pages instead, scattered.
 *   usage: restore_incremental GOFILE WORKDIR [MIB [PERCENT]] */
#include "rt_prog.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>

/* Read by the tests through gdb: the generation the memory is at. */
volatile int generation;

static uint64_t pattern(uint64_t i, int gen) {
  uint64_t x = (i + 77 + (uint64_t)gen * 0x1234567) * 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 31);
}

/* 0: one page in ten; else the percentage of pages each generation writes. */
static size_t percent;

/* Whether generation k rewrites page p. */
static int writes(size_t p, int k) {
  if (!percent) return (p * 7 + (size_t)k) % 10 == 0;
  return (p * 7 + (size_t)k * 13) % 100 < percent;
}

/* The generation that last wrote page p when the memory is at `gen`. */
static int last_writer(size_t p, int gen) {
  for (int k = gen; k >= 1; k--)
    if (writes(p, k)) return k;
  return 0;
}

static uint64_t *mem;
static size_t pages;

/* Generation gen rewrites the pages it is the last writer of. */
static void advance(int gen) {
  for (size_t p = 0; p < pages; p++)
    if (last_writer(p, gen) == gen)
      for (size_t i = p * 512; i < (p + 1) * 512; i++) mem[i] = pattern(i, gen);
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  const char *dir = argv[2];
  size_t mib = argc > 3 && atoi(argv[3]) > 0 ? (size_t)atoi(argv[3]) : 32;
  if (argc > 4 && atoi(argv[4]) > 0 && atoi(argv[4]) <= 100) percent = (size_t)atoi(argv[4]);
  size_t words = mib << 17;
  pages = words / 512;
  mem = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) rt_die("mmap");
  for (size_t i = 0; i < words; i++) mem[i] = pattern(i, 0);
  printf("mem %p\n", (void *)mem);
  rt_ready();
  rt_serve_steps(argv[1], dir, &generation, advance);
  size_t bad = 0;
  for (size_t p = 0; p < pages; p++) {
    int gen = last_writer(p, generation);
    for (size_t i = p * 512; i < (p + 1) * 512; i++)
      if (mem[i] != pattern(i, gen) && bad++ < 5)
        rt_fail("word %zu (page %zu, generation %d) is 0x%llx, expected 0x%llx", i, p, gen,
                (unsigned long long)mem[i], (unsigned long long)pattern(i, gen));
  }
  RT_CHECK(bad == 0, "%zu of %zu words differ (at generation %d)", bad, words, generation);
  fprintf(stderr, "generation %d checked\n", generation);
  return rt_finish();
}
