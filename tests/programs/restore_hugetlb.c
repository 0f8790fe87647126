/* Restore test: hugetlb memory. A private MAP_HUGETLB mapping of two huge
 * pages with only the first touched, and a shared one of one huge page.
 * After the restore both are hugetlb again (smaps "ht", the same
 * KernelPageSize, /anon_hugepage), with their bytes; the untouched page
 * reads as zeros. The test provides the huge pages (vm.nr_hugepages).
 *   usage: restore_hugetlb GOFILE WORKDIR */
#include "rt_prog.h"

#include <stdint.h>
#include <sys/mman.h>

#define HUGE (2ul << 20)

/* A "Key:" value (first number) of the smaps entry holding addr, or
 * VmFlags containing `flag` (1/0) when key is "VmFlags"; -1 if not found.
 * *path gets the entry's path. */
static long smaps_value(const void *addr, const char *key, const char *flag, char *path, size_t cap) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[1024];
  int in = 0;
  long out = -1;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long s, e;
    int n = 0;
    if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &s, &e, &n) == 2 && n > 0 && strchr(line, '-') < strchr(line, ' ')) {
      in = s <= (uintptr_t)addr && (uintptr_t)addr < e;
      if (in && path) {
        snprintf(path, cap, "%s", line + n);
        path[strcspn(path, "\n")] = 0;
      }
      continue;
    }
    if (!in || strncmp(line, key, strlen(key)) != 0 || line[strlen(key)] != ':') continue;
    if (flag) {
      char want[8];
      snprintf(want, sizeof want, " %s", flag);
      out = 0;
      for (char *p = line; (p = strstr(p, want)) != NULL; p++)
        if (p[3] == ' ' || p[3] == '\n') out = 1;
    } else {
      out = strtol(line + strlen(key) + 1, NULL, 10);
    }
    break;
  }
  if (f) fclose(f);
  return out;
}

static void check_hugetlb(const char *what, const void *addr) {
  char path[512] = "";
  long ht = smaps_value(addr, "VmFlags", "ht", path, sizeof path);
  long kps = smaps_value(addr, "KernelPageSize", NULL, NULL, 0);
  RT_CHECK(ht == 1, "%s: smaps has no 'ht' flag after the restore (%ld)", what, ht);
  RT_CHECK(kps == 2048, "%s: KernelPageSize %ld kB after the restore, 2048 before", what, kps);
  RT_CHECK(strcmp(path, "/anon_hugepage (deleted)") == 0, "%s: maps shows \"%s\"", what, path);
}

static uint8_t pattern(size_t i, unsigned seed) { return (uint8_t)(i * 11 + i / 4093 + seed); }

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  uint8_t *priv = mmap(NULL, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
  uint8_t *shared = mmap(NULL, HUGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
  if (priv == MAP_FAILED || shared == MAP_FAILED) rt_die("mmap MAP_HUGETLB");
  for (size_t i = 0; i < HUGE; i++) priv[i] = pattern(i, 1);
  for (size_t i = 0; i < HUGE; i++) shared[i] = pattern(i, 2);
  if (smaps_value(priv, "VmFlags", "ht", NULL, 0) != 1 || smaps_value(shared, "KernelPageSize", NULL, NULL, 0) != 2048)
    rt_die("the mappings are not 2 MiB hugetlb before the dump");

  rt_ready();
  rt_wait_go(argv[1]);

  check_hugetlb("private hugetlb", priv);
  check_hugetlb("shared hugetlb", shared);
  size_t i;
  for (i = 0; i < HUGE && priv[i] == pattern(i, 1); i++) {
  }
  RT_CHECK(i == HUGE, "private hugetlb: byte %zu differs", i);
  for (i = 0; i < HUGE && shared[i] == pattern(i, 2); i++) {
  }
  RT_CHECK(i == HUGE, "shared hugetlb: byte %zu differs", i);
  for (i = HUGE; i < 2 * HUGE && priv[i] == 0; i++) {
  }
  RT_CHECK(i == 2 * HUGE, "private hugetlb: the untouched huge page is not zero at byte %zu", i);
  return rt_finish();
}
