/* Fault test target (tests/faults): 16 MiB of patterned memory that the
 * program makes MADV_DONTFORK, whole mapping, when SIDEDIR/flip appears
 * (then it creates SIDEDIR/flipped), and 1 MiB of patterned
 * MADV_WIPEONFORK memory from the start. A dump reads smaps before its
 * freeze (DECISIONS 218); the test may flip the mapping in between, so
 * that the early read is out of date at the instant: the copy has no such
 * mapping, and the dump must notice and read smaps again, or store it as
 * zeros. After the restore both mappings must have their bytes and flags.
 *   usage: fault_late_dontfork GOFILE WORKDIR SIDEDIR */
#include "rt_prog.h"

#include <sys/mman.h>

#define SIZE (16u << 20)
#define WIPED (1u << 20)

static unsigned char byte_at(unsigned i, unsigned salt) { return (unsigned char)(i * 7 + i / 4096 + salt); }

static void fill(unsigned char *p, unsigned n, unsigned salt) {
  for (unsigned i = 0; i < n; i++) p[i] = byte_at(i, salt);
}

static void check(const unsigned char *p, unsigned n, unsigned salt, const char *what) {
  for (unsigned i = 0; i < n; i++)
    if (p[i] != byte_at(i, salt)) {
      rt_fail("the %s mapping lost its bytes at offset %u", what, i);
      return;
    }
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  unsigned char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned char *w = mmap(NULL, WIPED, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED || w == MAP_FAILED) rt_die("mmap");
  if (madvise(w, WIPED, MADV_WIPEONFORK) < 0) rt_die("MADV_WIPEONFORK");
  fill(p, SIZE, 0);
  fill(w, WIPED, 3);
  if (rt_vma_has_flag(p, "dc") != 0) rt_die("the mapping is MADV_DONTFORK already");
  char flip[4096], flipped[4096];
  snprintf(flip, sizeof flip, "%s/flip", argv[3]);
  snprintf(flipped, sizeof flipped, "%s/flipped", argv[3]);
  rt_ready();
  int done = 0;
  while (access(argv[1], F_OK) != 0) {
    if (!done && access(flip, F_OK) == 0) {
      if (madvise(p, SIZE, MADV_DONTFORK) < 0) rt_die("madvise");
      int fd = open(flipped, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) rt_die("create %s", flipped);
      close(fd);
      done = 1;
    }
    rt_sleep_ms(2);
  }
  RT_CHECK(rt_vma_has_flag(p, "dc") == done, "the mapping's MADV_DONTFORK is not as before the dump");
  RT_CHECK(rt_vma_has_flag(w, "wf") == 1, "the MADV_WIPEONFORK mapping lost its flag");
  check(p, SIZE, 0, done ? "MADV_DONTFORK" : "16 MiB");
  check(w, WIPED, 3, "MADV_WIPEONFORK");
  return rt_finish();
}
