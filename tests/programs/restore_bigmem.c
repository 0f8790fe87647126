/* Restore test: ~64 MiB of patterned anonymous memory (for --lazy). After
 * the restore every word is checked, then every page is written, which
 * must not reach the image file a lazy restore maps. With "scatter" as the
 * third argument it first reads one word in the middle of every MiB,
 * from the last MiB back, so that with --lazy those pages come in by
 * faults ahead of the helper's background copy. With "split" it first
 * makes the fourth page of every 64 KiB read-only (a VMA of its own, which
 * a lazy restore's 64 KiB fault window and 1 MiB background steps then
 * cross), and makes it all writable again after the checks. With "holes"
 * pages 1-14 of every 64 KiB are dropped before the dump (stored nowhere,
 * zeros), and read after the restore a page at a time from the last page
 * back, as a thread probes its stack, before the checks.
 *   usage: restore_bigmem GOFILE [MIB [scatter|split|holes]] */
#include "rt_prog.h"

#include <stdint.h>
#include <sys/mman.h>

static int holes;

/* Word i's value: the pattern, or 0 in a hole (pages 1-14 of 64 KiB). */
static uint64_t pattern(uint64_t i) {
  size_t in_window = (i / 512) % 16;
  if (holes && in_window >= 1 && in_window <= 14) return 0;
  uint64_t x = (i + 77) * 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 31);
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 2);
  size_t mib = argc > 2 && atoi(argv[2]) > 0 ? (size_t)atoi(argv[2]) : 64;
  size_t words = mib << 17;
  holes = argc > 3 && strcmp(argv[3], "holes") == 0;
  uint64_t *mem = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) rt_die("mmap");
  for (size_t i = 0; i < words; i++) mem[i] = pattern(i);
  /* A read-only tail: lazily mapped pages keep their protection. */
  uint64_t *ro = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (ro == MAP_FAILED) rt_die("mmap");
  for (size_t i = 0; i < (1 << 17); i++) ro[i] = ~pattern(i);
  mprotect(ro, 1 << 20, PROT_READ);
  if (holes)
    for (size_t off = 0; off < words * 8; off += 65536)
      if (madvise((char *)mem + off + 4096, 14 * 4096, MADV_DONTNEED) != 0) rt_die("madvise");
  rt_ready();
  rt_wait_go(argv[1]);
  int split = argc > 3 && strcmp(argv[3], "split") == 0;
  if (split)
    for (size_t off = 3 * 4096; off < words * 8; off += 65536)
      RT_CHECK(mprotect((char *)mem + off, 4096, PROT_READ) == 0, "mprotect: %s", strerror(errno));
  if (argc > 3 && strcmp(argv[3], "scatter") == 0) {
    volatile uint64_t sum = 0;
    for (size_t mi = mib; mi-- > 0;) sum += mem[(mi << 17) + (1 << 16)];
    (void)sum;
  }
  if (holes) {
    volatile uint64_t sum = 0;
    for (size_t pg = words / 512; pg-- > 0;) sum += mem[pg * 512 + 7];
    (void)sum;
  }
  size_t bad = 0;
  for (size_t i = 0; i < words; i++)
    if (mem[i] != pattern(i) && bad++ < 5)
      rt_fail("word %zu (page %zu) is 0x%llx, expected 0x%llx", i, i / 512, (unsigned long long)mem[i],
              (unsigned long long)pattern(i));
  RT_CHECK(bad == 0, "%zu of %zu words differ", bad, words);
  for (size_t i = 0; i < (1 << 17); i++)
    if (ro[i] != ~pattern(i)) {
      rt_fail("read-only word %zu differs", i);
      break;
    }
  if (split) RT_CHECK(mprotect(mem, words * 8, PROT_READ | PROT_WRITE) == 0, "mprotect: %s", strerror(errno));
  for (size_t i = 0; i < words; i += 512) mem[i] = 0xdead;
  for (size_t i = 0; i < words; i += 512)
    if (mem[i] != 0xdead) {
      rt_fail("write to page %zu did not stick", i / 512);
      break;
    }
  return rt_finish();
}
