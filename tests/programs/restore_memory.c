/* Restore test: memory. Anonymous patterns over a few MiB, a sparse region
 * (every 7th page touched), a PROT_NONE guard page, an mremap'ed region, a
 * private file mapping with some pages written (copy-on-write), a shared
 * file mapping whose writes after the restore must reach the file, and the
 * pid/tid.   usage: restore_memory GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define PAGE 4096ul
#define ANON_SIZE (4ul << 20)
#define SPARSE_PAGES 2048ul /* 8 MiB */
#define ZEROISH_PAGES 256ul /* 1 MiB */
#define FILE_PAGES 16ul
#define SHARED_PAGES 4ul

/* A field ("Rss", "AnonHugePages") of the mapping that holds p, in kB,
 * from /proc/self/smaps. */
static unsigned long smaps_kb(const void *p, const char *field) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return 0;
  char line[512];
  int inside = 0;
  unsigned long kb = 0, lo, hi;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
      inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    else if (inside && strncmp(line, field, n) == 0 && line[n] == ':' && sscanf(line + n + 1, "%lu", &kb) == 1)
      break;
  }
  fclose(f);
  return kb;
}

/* AnonHugePages of the mapping that holds p, from /proc/self/smaps. */
static unsigned long anon_huge_kb(const void *p) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return 0;
  char line[512];
  int inside = 0;
  unsigned long kb = 0, lo, hi;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
      inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
    else if (inside && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
      break;
  }
  fclose(f);
  return kb;
}

static uint64_t pattern(uint64_t seed, uint64_t i) {
  uint64_t x = (seed + i) * 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 29);
}

static void fill(void *p, size_t bytes, uint64_t seed) {
  uint64_t *w = p;
  for (size_t i = 0; i < bytes / 8; i++) w[i] = pattern(seed, i);
}

static int check(const char *what, const void *p, size_t bytes, uint64_t seed) {
  const uint64_t *w = p;
  for (size_t i = 0; i < bytes / 8; i++)
    if (w[i] != pattern(seed, i)) {
      rt_fail("%s: word %zu at %p is 0x%llx, expected 0x%llx", what, i, (void *)&w[i], (unsigned long long)w[i],
              (unsigned long long)pattern(seed, i));
      return 0;
    }
  return 1;
}

static int all_zero(const void *p, size_t bytes) {
  const uint64_t *w = p;
  for (size_t i = 0; i < bytes / 8; i++)
    if (w[i]) return 0;
  return 1;
}

/* Uses about `kib` KiB of stack: the stack grows below its size at the
 * dump. */
static __attribute__((noinline)) uint64_t deep(int kib) {
  volatile uint8_t frame[1024];
  frame[0] = (uint8_t)kib;
  frame[1023] = (uint8_t)kib;
  if (kib <= 1) return frame[0];
  return deep(kib - 1) + frame[1023];
}

static sigjmp_buf segv_jump;
static void on_segv(int sig) { siglongjmp(segv_jump, sig); }

/* The /proc/self/maps permissions of the mapping holding addr, or "". */
static const char *perms_of(void *addr, char out[5]) {
  out[0] = 0;
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return out;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    unsigned long s, e;
    char perms[5];
    if (sscanf(line, "%lx-%lx %4s", &s, &e, perms) == 3 && (unsigned long)addr >= s && (unsigned long)addr < e) {
      memcpy(out, perms, 5);
      break;
    }
  }
  fclose(f);
  return out;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  const char *go = argv[1], *dir = argv[2];
  pid_t pid0 = getpid(), tid0 = (pid_t)syscall(SYS_gettid);

  /* Anonymous, fully written. */
  uint8_t *anon = mmap(NULL, ANON_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (anon == MAP_FAILED) rt_die("mmap anon");
  fill(anon, ANON_SIZE, 1);

  /* Sparse: every 7th page. */
  uint8_t *sparse = mmap(NULL, SPARSE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sparse == MAP_FAILED) rt_die("mmap sparse");
  for (size_t p = 0; p < SPARSE_PAGES; p += 7) fill(sparse + p * PAGE, PAGE, 1000 + p);

  /* Zero detection: 1 MiB (longer than the dump's 256 KiB read slices),
   * every third page written with zeros (stored as a hole), every third
   * zero but for its last byte (data the first word does not show), the
   * rest patterned. */
  uint8_t *zeroish = mmap(NULL, ZEROISH_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (zeroish == MAP_FAILED) rt_die("mmap zeroish");
  for (size_t p = 0; p < ZEROISH_PAGES; p++) {
    memset(zeroish + p * PAGE, 0, PAGE);
    if (p % 3 == 1) zeroish[p * PAGE + PAGE - 1] = (uint8_t)(p | 1);
    if (p % 3 == 2) fill(zeroish + p * PAGE, PAGE, 3000 + p);
  }

  /* Guard: three pages, the middle one PROT_NONE. */
  uint8_t *guard = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (guard == MAP_FAILED) rt_die("mmap guard");
  fill(guard, PAGE, 2);
  fill(guard + 2 * PAGE, PAGE, 3);
  if (mprotect(guard + PAGE, PAGE, PROT_NONE) != 0) rt_die("mprotect");

  /* mremap: 1 MiB grown to 2 MiB (may move), second half written after. */
  uint8_t *rem = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (rem == MAP_FAILED) rt_die("mmap rem");
  fill(rem, 1 << 20, 4);
  /* Block the in-place growth so that it moves. */
  uint8_t *block = mmap(rem + (1 << 20), PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  uint8_t *moved = mremap(rem, 1 << 20, 2 << 20, MREMAP_MAYMOVE);
  if (moved == MAP_FAILED) rt_die("mremap");
  if (block != MAP_FAILED) munmap(block, PAGE);
  fill(moved + (1 << 20), 1 << 20, 5);

  /* Private file mapping: the file holds pattern 6 per page; pages 1, 5
   * and 9 are written through the mapping (pattern 7). */
  char path[4096];
  snprintf(path, sizeof path, "%s/private.dat", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) rt_die("open %s", path);
  static uint8_t page[PAGE];
  for (size_t p = 0; p < FILE_PAGES; p++) {
    fill(page, PAGE, 600 + p);
    if (pwrite(fd, page, PAGE, p * PAGE) != (ssize_t)PAGE) rt_die("pwrite");
  }
  fsync(fd);
  uint8_t *priv = mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (priv == MAP_FAILED) rt_die("mmap private file");
  close(fd);
  volatile uint8_t sink = 0;
  for (size_t p = 0; p < FILE_PAGES; p++) sink += priv[p * PAGE]; /* read-fault all */
  for (size_t p = 1; p < FILE_PAGES; p += 4) fill(priv + p * PAGE, PAGE, 700 + p);

  /* Shared file mapping. */
  char spath[4096];
  snprintf(spath, sizeof spath, "%s/shared.dat", dir);
  int sfd = open(spath, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (sfd < 0 || ftruncate(sfd, SHARED_PAGES * PAGE) != 0) rt_die("shared file");
  uint8_t *shared = mmap(NULL, SHARED_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
  if (shared == MAP_FAILED) rt_die("mmap shared file");
  close(sfd);
  for (size_t p = 0; p < SHARED_PAGES; p++) fill(shared + p * PAGE, PAGE, 80 + p);
  msync(shared, SHARED_PAGES * PAGE, MS_SYNC);

  /* Transparent huge pages asked for. */
  size_t thp_len = 8ul << 20;
  uint8_t *thp_raw = mmap(NULL, thp_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (thp_raw == MAP_FAILED) rt_die("mmap thp");
  uint8_t *thp = (uint8_t *)(((uintptr_t)thp_raw + (2ul << 20) - 1) & ~((2ul << 20) - 1));
  madvise(thp, 4ul << 20, MADV_HUGEPAGE);
  fill(thp, 4ul << 20, 11);

  /* Many small mappings with alternating protections. */
  enum { NSMALL = 3000 };
  uint8_t *small = mmap(NULL, NSMALL * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (small == MAP_FAILED) rt_die("mmap small");
  for (size_t i = 0; i < NSMALL; i++) {
    small[i * PAGE] = (uint8_t)i;
    small[i * PAGE + PAGE - 1] = (uint8_t)(i >> 8);
  }
  for (size_t i = 0; i < NSMALL; i += 2) mprotect(small + i * PAGE, PAGE, PROT_READ);

  /* The heap end (brk), grown by a page before the dump (after malloc has
   * set up its arena, which stdio needs later). */
  free(malloc(64));
  uint8_t *brk0 = sbrk(4096);
  if (brk0 == (void *)-1) rt_die("sbrk");
  memset(brk0, 0x5b, 4096);
  void *brk_end0 = sbrk(0);

  unsigned long sparse_rss0 = smaps_kb(sparse, "Rss");
  printf("pid %d\ntid %d\n", pid0, tid0);
  rt_ready();
  rt_wait_go(go);

  RT_CHECK(getpid() == pid0, "getpid() %d, was %d", getpid(), pid0);
  RT_CHECK(syscall(SYS_gettid) == tid0, "gettid() %ld, was %d", syscall(SYS_gettid), tid0);

  /* The restore made only the pages the image stores (every 7th), not the
   * whole sparse mapping (which may have merged with its neighbours, as
   * before the dump): read before the checks below touch the rest. */
  unsigned long sparse_rss = smaps_kb(sparse, "Rss");
  RT_CHECK(sparse_rss <= sparse_rss0, "the sparse mapping is %lu kB resident after the restore, %lu kB before",
           sparse_rss, sparse_rss0);
  check("anonymous", anon, ANON_SIZE, 1);
  for (size_t p = 0; p < SPARSE_PAGES; p++) {
    if (p % 7 == 0) {
      char what[64];
      snprintf(what, sizeof what, "sparse page %zu", p);
      if (!check(what, sparse + p * PAGE, PAGE, 1000 + p)) break;
    } else if (!all_zero(sparse + p * PAGE, PAGE)) {
      rt_fail("sparse page %zu is not zero", p);
      break;
    }
  }
  for (size_t p = 0; p < ZEROISH_PAGES; p++) {
    char what[64];
    snprintf(what, sizeof what, "zero-detection page %zu", p);
    const uint8_t *q = zeroish + p * PAGE;
    if (p % 3 == 2) {
      if (!check(what, q, PAGE, 3000 + p)) break;
    } else if (!all_zero(q, PAGE - 1) || q[PAGE - 1] != (p % 3 == 1 ? (uint8_t)(p | 1) : 0)) {
      rt_fail("%s lost its bytes (last byte %u)", what, q[PAGE - 1]);
      break;
    }
  }
  check("guard low", guard, PAGE, 2);
  check("guard high", guard + 2 * PAGE, PAGE, 3);
  char perms[5];
  RT_CHECK(strcmp(perms_of(guard + PAGE, perms), "---p") == 0, "guard page perms \"%s\", expected ---p", perms);
  RT_CHECK(strcmp(perms_of(guard, perms), "rw-p") == 0, "page below the guard: perms \"%s\", expected rw-p", perms);
  struct sigaction sa = {0}, old;
  sa.sa_handler = on_segv;
  sigaction(SIGSEGV, &sa, &old);
  int faulted = sigsetjmp(segv_jump, 1);
  if (!faulted) {
    sink += guard[PAGE];
    rt_fail("reading the PROT_NONE guard page did not fault");
  }
  sigaction(SIGSEGV, &old, NULL);

  check("mremap first half", moved, 1 << 20, 4);
  check("mremap second half", moved + (1 << 20), 1 << 20, 5);
  RT_CHECK(strcmp(perms_of(moved + (2 << 20) - 1, perms), "rw-p") == 0, "mremap'ed end perms \"%s\"", perms);

  for (size_t p = 0; p < FILE_PAGES; p++) {
    char what[64];
    snprintf(what, sizeof what, "private file page %zu", p);
    check(what, priv + p * PAGE, PAGE, (p % 4 == 1 ? 700 : 600) + p);
  }
  /* The file itself never saw the private writes. */
  fd = open(path, O_RDONLY);
  if (fd < 0) {
    rt_fail("reopen %s: %s", path, strerror(errno));
  } else {
    for (size_t p = 0; p < FILE_PAGES; p++) {
      if (pread(fd, page, PAGE, p * PAGE) != (ssize_t)PAGE) rt_fail("pread %s", path);
      char what[64];
      snprintf(what, sizeof what, "private.dat page %zu on disk", p);
      check(what, page, PAGE, 600 + p);
    }
    close(fd);
  }
  /* Private pages written after the restore stay private too. */
  fill(priv, PAGE, 800);
  check("private page 0 rewritten", priv, PAGE, 800);

  /* Shared: the old contents, and new writes reach the file. */
  for (size_t p = 0; p < SHARED_PAGES; p++) {
    char what[64];
    snprintf(what, sizeof what, "shared mapping page %zu", p);
    check(what, shared + p * PAGE, PAGE, 80 + p);
  }
  fill(shared + PAGE, PAGE, 9);
  if (msync(shared, SHARED_PAGES * PAGE, MS_SYNC) != 0) rt_fail("msync: %s", strerror(errno));
  sfd = open(spath, O_RDONLY);
  if (sfd < 0) {
    rt_fail("reopen %s: %s", spath, strerror(errno));
  } else {
    if (pread(sfd, page, PAGE, PAGE) != (ssize_t)PAGE) rt_fail("pread %s", spath);
    check("shared.dat page 1 after a write through the restored mapping", page, PAGE, 9);
    if (pread(sfd, page, PAGE, 2 * PAGE) != (ssize_t)PAGE) rt_fail("pread %s", spath);
    check("shared.dat page 2", page, PAGE, 82);
    close(sfd);
  }
  check("huge-page region", thp, 4ul << 20, 11);
  fprintf(stderr, "huge_kb_after_restore %lu\n", anon_huge_kb(thp));
  {
    size_t bad = 0;
    for (size_t i = 0; i < NSMALL; i++)
      if (small[i * PAGE] != (uint8_t)i || small[i * PAGE + PAGE - 1] != (uint8_t)(i >> 8)) bad++;
    RT_CHECK(bad == 0, "%zu of %d small mappings lost their contents", bad, NSMALL);
    RT_CHECK(strcmp(perms_of(small, perms), "r--p") == 0 && strcmp(perms_of(small + PAGE, perms), "rw-p") == 0,
             "small mappings: protections lost");
    small[PAGE] = 1;
  }
  /* The stack grows past its size at the dump (4 MiB of frames). */
  RT_CHECK(deep(4096) != 0, "deep recursion");

  /* brk: where it was, and it still grows. */
  RT_CHECK(sbrk(0) == brk_end0, "brk is %p, was %p", sbrk(0), brk_end0);
  RT_CHECK(brk0[0] == 0x5b && brk0[4095] == 0x5b, "the brk page lost its contents");
  uint8_t *more = sbrk(1 << 20);
  if (more == (void *)-1) {
    rt_fail("sbrk(1 MiB) after the restore: %s", strerror(errno));
  } else {
    memset(more, 0x6c, 1 << 20);
    RT_CHECK(sbrk(0) == (uint8_t *)brk_end0 + (1 << 20), "brk did not grow by 1 MiB");
  }
  void *big = malloc(64 << 20); /* mmap'ed by malloc */
  RT_CHECK(big != NULL, "malloc(64 MiB) failed");
  if (big) memset(big, 1, 64 << 20);
  free(big);
  (void)sink;
  return rt_finish();
}
