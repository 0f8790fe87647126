/* Restore test for an increment whose VmFlags before the freeze come from
 * the parent image (DECISIONS 264): three 4 MiB private patterned
 * mappings F, W and D. When WORKDIR/step1 appears it gives one of them a
 * whole-mapping madvise (ADVICE: "dontfork" F, "wipeonfork" W, "dontdump"
 * D, "none"), which changes no line of /proc/PID/maps, rewrites the first
 * page of each, and creates WORKDIR/done1. After the go file (the
 * restore) it checks every word and each mapping's flags: an increment
 * that trusted the parent's flags unconfirmed would store W as the copy's
 * zeros, plan F from a copy that lacks it, or record D without "dd".
 *   usage: restore_parent_flags GOFILE WORKDIR ADVICE */
#include "rt_prog.h"

#include <stdint.h>
#include <sys/mman.h>

#define PAGES 1024
#define WORDS (PAGES * 512)

static uint64_t *F, *W, *D;
static const char *advice;
static volatile int generation;

static uint64_t pattern(size_t i, int salt) { return (i * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)salt << 48); }

/* Mapping m of three, each between PROT_NONE pages of `area`: neighbours
 * with the same flags would be one VMA, which a madvise of one of them
 * would split (a split mapping is read with smaps, not guessed). */
static uint64_t *map_filled(char *area, int m) {
  uint64_t *p = (uint64_t *)(area + (size_t)m * (PAGES + 1) * 4096 + 4096);
  if (mprotect(p, PAGES * 4096, PROT_READ | PROT_WRITE) != 0) rt_die("mprotect");
  for (size_t i = 0; i < WORDS; i++) p[i] = pattern(i, m);
  return p;
}

static void advance(int gen) {
  if (gen != 1) return;
  int rc = 0;
  if (strcmp(advice, "dontfork") == 0) rc = madvise(F, PAGES * 4096, MADV_DONTFORK);
  if (strcmp(advice, "wipeonfork") == 0) rc = madvise(W, PAGES * 4096, MADV_WIPEONFORK);
  if (strcmp(advice, "dontdump") == 0) rc = madvise(D, PAGES * 4096, MADV_DONTDUMP);
  if (rc != 0) rt_die("madvise %s", advice);
  uint64_t *all[] = {F, W, D};
  for (int m = 0; m < 3; m++)
    for (size_t i = 0; i < 512; i++) all[m][i] = pattern(i, 100 + m);
}

static void check(const char *what, const uint64_t *p, int m, int gen) {
  size_t bad = 0;
  for (size_t i = 0; i < WORDS; i++) {
    uint64_t want = pattern(i, gen >= 1 && i < 512 ? 100 + m : m);
    if (p[i] != want && bad++ < 5)
      rt_fail("%s word %zu is 0x%llx, expected 0x%llx", what, i, (unsigned long long)p[i], (unsigned long long)want);
  }
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  advice = argv[3];
  char *area = mmap(NULL, (3 * (PAGES + 1) + 1) * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) rt_die("mmap");
  F = map_filled(area, 0);
  W = map_filled(area, 1);
  D = map_filled(area, 2);
  rt_ready();
  rt_serve_steps(argv[1], argv[2], &generation, advance);
  int gen = generation;
  check("F", F, 0, gen);
  check("W", W, 1, gen);
  check("D", D, 2, gen);
  int changed = gen >= 1;
  RT_CHECK(rt_vma_has_flag(F, "dc") == (changed && strcmp(advice, "dontfork") == 0), "F's MADV_DONTFORK is not as dumped");
  RT_CHECK(rt_vma_has_flag(W, "wf") == (changed && strcmp(advice, "wipeonfork") == 0), "W's MADV_WIPEONFORK is not as dumped");
  RT_CHECK(rt_vma_has_flag(D, "dd") == (changed && strcmp(advice, "dontdump") == 0), "D's MADV_DONTDUMP is not as dumped");
  fprintf(stderr, "generation %d checked\n", gen);
  return rt_finish();
}
