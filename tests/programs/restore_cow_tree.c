/* Restore test: memory a forked tree still shares copy-on-write (issue 9).
 * The parent fills 32 MiB of private memory with a pattern, then forks 3
 * children; child k rewrites its own 1 MiB window with another pattern and
 * leaves the rest shared with the parent. The image must hold the shared
 * part once (the test bounds its size). After restore every process checks
 * every word of the 32 MiB; the children report through their exit status.
 *   usage: restore_cow_tree GOFILE WORKDIR
 * Prints "pids P C1 C2 C3", "region ADDR", "word_addr ADDR" and
 * "word_value V" (a word of the shared part, for gdb), then "ready". */
#include "rt_prog.h"

#include <inttypes.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define REGION_BYTES (32ul << 20)
#define WINDOW_BYTES (1ul << 20)
#define CHILDREN 3
#define WORDS (REGION_BYTES / sizeof(uint64_t))

static uint64_t shared_word(uint64_t i) { return (i * 0x9e3779b97f4a7c15ull) ^ 0x5eed0000cafeull; }
static uint64_t child_word(uint64_t i, int k) { return (i * 0xff51afd7ed558ccdull) + (uint64_t)(k + 1); }
/* Child k's window: [k * 8 MiB + 1 MiB, + 1 MiB). */
static uint64_t window_first(int k) { return ((uint64_t)k * (8ul << 20) + WINDOW_BYTES) / sizeof(uint64_t); }

/* Counts the words of `region` that differ from what process k (-1: the
 * parent) must hold; the first difference goes to stderr. */
static uint64_t check_region(const uint64_t *region, int k) {
  uint64_t bad = 0;
  for (uint64_t i = 0; i < WORDS; i++) {
    int mine = k >= 0 && i >= window_first(k) && i < window_first(k) + WINDOW_BYTES / sizeof(uint64_t);
    uint64_t want = mine ? child_word(i, k) : shared_word(i);
    if (region[i] != want && bad++ == 0)
      rt_fail("process %d (%d): word %" PRIu64 " is 0x%" PRIx64 ", not 0x%" PRIx64, (int)getpid(), k, i, region[i],
              want);
  }
  return bad;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  uint64_t *region = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) rt_die("mmap");
  for (uint64_t i = 0; i < WORDS; i++) region[i] = shared_word(i);
  pid_t kids[CHILDREN];
  int written[2]; /* each child says here that its window is written */
  if (pipe(written) != 0) rt_die("pipe");
  for (int k = 0; k < CHILDREN; k++) {
    kids[k] = fork();
    if (kids[k] < 0) rt_die("fork");
    if (kids[k] == 0) {
      uint64_t first = window_first(k);
      for (uint64_t i = first; i < first + WINDOW_BYTES / sizeof(uint64_t); i++) region[i] = child_word(i, k);
      if (write(written[1], "w", 1) != 1) _exit(2);
      close(written[0]);
      close(written[1]);
      rt_wait_go(argv[1]);
      _exit(check_region(region, k) ? 1 : 0);
    }
  }
  printf("pids %d %d %d %d\n", (int)getpid(), (int)kids[0], (int)kids[1], (int)kids[2]);
  /* A word of the shared part outside every window. */
  uint64_t w = (5ul << 20) / sizeof(uint64_t) + 3;
  printf("region %p\nword_addr %p\nword_value 0x%" PRIx64 "\n", (void *)region, (void *)&region[w], region[w]);
  /* The children have written their windows before the dump. */
  close(written[1]);
  for (int k = 0; k < CHILDREN; k++) {
    char c;
    if (read(written[0], &c, 1) != 1) rt_die("a child did not write its window");
  }
  close(written[0]);
  rt_ready();
  rt_wait_go(argv[1]);
  check_region(region, -1);
  for (int k = 0; k < CHILDREN; k++) {
    int st = 0;
    RT_CHECK(waitpid(kids[k], &st, 0) == kids[k] && WIFEXITED(st) && WEXITSTATUS(st) == 0,
             "child %d (%d): status 0x%x (1: a word differed after restore)", k, (int)kids[k], st);
  }
  return rt_finish();
}
