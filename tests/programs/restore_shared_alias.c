/* Restore test: one shared anonymous object mapped more than once. A
 * MAP_SHARED|MAP_ANONYMOUS region is mapped a second time whole and a
 * third time in part (mremap with old_size 0 duplicates a shared mapping).
 * After the restore the three still alias: a write through one is seen
 * through the others, and /proc/self/maps shows one object (one inode).
 *   usage: restore_shared_alias GOFILE WORKDIR */
#include "rt_prog.h"

#include <stdint.h>
#include <sys/mman.h>

#define PAGE 4096
#define PAGES 4

/* Inode column of the /proc/self/maps line for addr; 0 if not found. */
static unsigned long inode_of(const void *addr) {
  FILE *f = fopen("/proc/self/maps", "r");
  char line[1024];
  unsigned long ino = 0;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long s, e, off, i;
    char perms[8], dev[16];
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu", &s, &e, perms, &off, dev, &i) == 6 && s <= (uintptr_t)addr &&
        (uintptr_t)addr < e) {
      ino = i;
      break;
    }
  }
  if (f) fclose(f);
  return ino;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  uint8_t *first = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (first == MAP_FAILED) rt_die("mmap");
  for (int i = 0; i < PAGES * PAGE; i++) first[i] = (uint8_t)(i * 3 + 1);
  uint8_t *second = mremap(first, 0, PAGES * PAGE, MREMAP_MAYMOVE);
  uint8_t *window = mremap(first + PAGE, 0, 2 * PAGE, MREMAP_MAYMOVE); /* pages 1-2 */
  if (second == MAP_FAILED || window == MAP_FAILED) rt_die("mremap old_size 0");
  second[10] = 0xab;
  if (first[10] != 0xab || window[0] != first[PAGE]) rt_die("the mappings do not alias before the dump");
  unsigned long ino = inode_of(first);
  if (!ino || inode_of(second) != ino || inode_of(window) != ino) rt_die("the mappings show different inodes");

  rt_ready();
  rt_wait_go(argv[1]);

  RT_CHECK(first[10] == 0xab && first[11] == (uint8_t)(11 * 3 + 1), "the first mapping lost its contents");
  RT_CHECK(second[PAGE] == (uint8_t)(PAGE * 3 + 1), "the second mapping lost its contents");
  RT_CHECK(window[5] == first[PAGE + 5], "the partial mapping does not show pages 1-2 of the object");
  first[100] = 0x11;
  RT_CHECK(second[100] == 0x11, "a write through the first mapping is not seen through the second");
  second[PAGE + 7] = 0x22;
  RT_CHECK(first[PAGE + 7] == 0x22 && window[7] == 0x22,
           "a write through the second mapping is not seen through the first and the partial one");
  window[PAGE + 9] = 0x33;
  RT_CHECK(first[2 * PAGE + 9] == 0x33, "a write through the partial mapping is not seen through the first");
  unsigned long a = inode_of(first), b = inode_of(second), c = inode_of(window);
  RT_CHECK(a && a == b && b == c, "maps show inodes %lu, %lu, %lu: not one object", a, b, c);
  return rt_finish();
}
