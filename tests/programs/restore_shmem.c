/* Restore test: shared memory within one process. A memfd mapped
 * MAP_SHARED with its fd kept open, an unlinked file likewise, and a
 * MAP_SHARED|MAP_ANONYMOUS region. After the restore the contents are back
 * and the mapping and the fd still show the same bytes: a write through one
 * is seen through the other.   usage: restore_shmem GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define PAGE 4096
#define PAGES 4
#define FD_MEMFD 30
#define FD_UNLINKED 31

static void fill(uint8_t *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 13 + seed);
}
static int same(const uint8_t *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (uint8_t)(i * 13 + seed)) return 0;
  return 1;
}

static void check_pair(const char *what, int fd, uint8_t *map) {
  for (int pg = 0; pg < PAGES; pg++)
    if (!same(map + pg * PAGE, PAGE, 10 + pg)) rt_fail("%s: mapping page %d lost its contents", what, pg);
  static uint8_t buf[PAGE];
  if (pread(fd, buf, PAGE, 3 * PAGE) != PAGE || !same(buf, PAGE, 13))
    rt_fail("%s: the fd does not show the mapping's page 3", what);
  /* mapping -> fd */
  fill(map + PAGE, PAGE, 99);
  if (pread(fd, buf, PAGE, PAGE) != PAGE || !same(buf, PAGE, 99))
    rt_fail("%s: a write through the mapping is not seen through the fd (they are no longer the same file)", what);
  /* fd -> mapping */
  fill(buf, PAGE, 77);
  if (pwrite(fd, buf, PAGE, 2 * PAGE) != PAGE) rt_fail("%s: pwrite: %s", what, strerror(errno));
  if (!same(map + 2 * PAGE, PAGE, 77)) rt_fail("%s: a write through the fd is not seen in the mapping", what);
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  int mfd = memfd_create("rs-memfd", 0);
  if (mfd < 0 || ftruncate(mfd, PAGES * PAGE) != 0) rt_die("memfd");
  if (dup2(mfd, FD_MEMFD) < 0) rt_die("dup2");
  close(mfd);
  uint8_t *mmap_memfd = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, FD_MEMFD, 0);
  if (mmap_memfd == MAP_FAILED) rt_die("mmap memfd");
  for (int pg = 0; pg < PAGES; pg++) fill(mmap_memfd + pg * PAGE, PAGE, 10 + pg);

  char path[4096];
  snprintf(path, sizeof path, "%s/shared-unlinked.dat", argv[2]);
  int ufd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (ufd < 0 || ftruncate(ufd, PAGES * PAGE) != 0) rt_die("open %s", path);
  if (dup2(ufd, FD_UNLINKED) < 0) rt_die("dup2");
  close(ufd);
  uint8_t *mmap_unlinked = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, FD_UNLINKED, 0);
  if (mmap_unlinked == MAP_FAILED) rt_die("mmap unlinked");
  for (int pg = 0; pg < PAGES; pg++) fill(mmap_unlinked + pg * PAGE, PAGE, 10 + pg);
  unlink(path);

  uint8_t *anon = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (anon == MAP_FAILED) rt_die("mmap shared anon");
  fill(anon, PAGES * PAGE, 5);

  rt_ready();
  rt_wait_go(argv[1]);

  RT_CHECK(same(anon, PAGES * PAGE, 5), "shared anonymous memory lost its contents");
  fill(anon, PAGE, 6);
  RT_CHECK(same(anon, PAGE, 6), "shared anonymous memory is not writable");
  check_pair("memfd", FD_MEMFD, mmap_memfd);
  check_pair("unlinked file", FD_UNLINKED, mmap_unlinked);
  return rt_finish();
}
