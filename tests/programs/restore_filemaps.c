/* Restore test: shared file mappings keep what the kernel allowed them
 * (issue 17, "Memory").
 * - A file opened O_RDWR and mapped MAP_SHARED with PROT_READ only, its fd
 *   closed: mprotect(PROT_WRITE) is allowed (VM_MAYWRITE, smaps "mw"), and
 *   a write through the mapping reaches the file.
 * - A memfd mapped MAP_SHARED twice, the fd kept: a write through the fd is
 *   seen in both mappings, a write through one mapping in the other.
 * - An unlinked file mapped MAP_SHARED twice, its fd kept: the same.
 *   usage: restore_filemaps GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define PAGE 4096

static char *map_shared(int fd, int prot) {
  char *p = mmap(NULL, 2 * PAGE, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) rt_die("mmap");
  return p;
}

/* Writes through fd at `off` and checks both mappings see it, then writes
 * through the first mapping and checks the second and the fd see it. */
static void check_shared(const char *what, int fd, char *a, char *b, int off) {
  char byte = (char)(0x40 + off % 50);
  if (pwrite(fd, &byte, 1, off) != 1) {
    rt_fail("%s: pwrite: %s", what, strerror(errno));
    return;
  }
  RT_CHECK(a[off] == byte && b[off] == byte, "%s: a write through the fd is not seen in %s mapping", what,
           a[off] != byte ? "the first" : "the second");
  a[off + PAGE] = (char)(byte + 1);
  char back = 0;
  RT_CHECK(b[off + PAGE] == (char)(byte + 1), "%s: a write through one mapping is not seen in the other", what);
  RT_CHECK(pread(fd, &back, 1, off + PAGE) == 1 && back == (char)(byte + 1),
           "%s: a write through a mapping is not seen through the fd", what);
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  char path[512], unlinked_path[512];
  snprintf(path, sizeof path, "%s/readonly-map", argv[2]);
  snprintf(unlinked_path, sizeof unlinked_path, "%s/unlinked-map", argv[2]);

  /* 1. Writable file, read-only shared mapping, fd closed. */
  int f = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (f < 0 || ftruncate(f, 2 * PAGE) < 0) rt_die("create %s", path);
  char *ro = map_shared(f, PROT_READ);
  close(f);

  /* 2. A memfd mapped twice. */
  int memfd = (int)syscall(SYS_memfd_create, "filemaps", 0);
  if (memfd < 0 || ftruncate(memfd, 2 * PAGE) < 0) rt_die("memfd");
  char *m1 = map_shared(memfd, PROT_READ | PROT_WRITE), *m2 = map_shared(memfd, PROT_READ | PROT_WRITE);

  /* 3. An unlinked file mapped twice. */
  int unlinked = open(unlinked_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (unlinked < 0 || ftruncate(unlinked, 2 * PAGE) < 0 || unlink(unlinked_path) < 0) rt_die("unlinked file");
  char *u1 = map_shared(unlinked, PROT_READ | PROT_WRITE), *u2 = map_shared(unlinked, PROT_READ | PROT_WRITE);

  check_shared("memfd before the dump", memfd, m1, m2, 10);
  check_shared("unlinked file before the dump", unlinked, u1, u2, 10);

  rt_ready();
  rt_wait_go(argv[1]);

  if (mprotect(ro, 2 * PAGE, PROT_READ | PROT_WRITE) < 0) {
    rt_fail("mprotect(PROT_WRITE) of a shared mapping of a file opened O_RDWR: %s", strerror(errno));
  } else {
    ro[5] = 'w';
    char back = 0;
    int again = open(path, O_RDONLY);
    RT_CHECK(again >= 0 && pread(again, &back, 1, 5) == 1 && back == 'w',
             "a write through the reprotected mapping did not reach the file");
    if (again >= 0) close(again);
  }
  check_shared("memfd", memfd, m1, m2, 20);
  check_shared("unlinked file", unlinked, u1, u2, 30);
  unlink(path);
  return rt_finish();
}
