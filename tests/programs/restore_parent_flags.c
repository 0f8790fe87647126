/* Restore test for an increment whose VmFlags before the freeze come from
 * the parent image (DECISIONS 3100): three 4 MiB private patterned
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

static uint64_t *map_filled(int salt) {
  uint64_t *p = mmap(NULL, PAGES * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) rt_die("mmap");
  for (size_t i = 0; i < WORDS; i++) p[i] = pattern(i, salt);
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
  F = map_filled(0);
  W = map_filled(1);
  D = map_filled(2);
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
