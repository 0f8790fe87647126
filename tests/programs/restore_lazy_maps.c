/* Restore test for --lazy: the memory map is the one an eager restore
 * gives, and pages not yet brought in stay right through what the process
 * does to its memory. A sparse region (every other page stored) must come
 * back as one VMA, and every mapping of before the dump be there unchanged
 * (range, permissions, path; [stack] still grows down). Then, with pages
 * still missing (the test holds the background copy back): a forked child
 * sees the stored bytes, a region moved by mremap keeps them, and a page
 * dropped by MADV_DONTNEED reads as zeros.
 *   usage: restore_lazy_maps GOFILE WORKDIR */
#include "rt_prog.h"

#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096
#define PAGES 64

static char maps_before[65536];

static void read_maps(char *out, size_t cap) {
  FILE *f = fopen("/proc/self/maps", "r");
  size_t n = f ? fread(out, 1, cap - 1, f) : 0;
  out[n] = 0;
  if (f) fclose(f);
}

/* "start-end perms offset dev inode path" without dev and inode (a
 * restored deleted or anonymous object may have another). */
static void strip_line(const char *line, char *out, size_t cap) {
  char range[64], perms[8], off[32], dev[16], path[512] = "";
  unsigned long ino;
  if (sscanf(line, "%63s %7s %31s %15s %lu %511[^\n]", range, perms, off, dev, &ino, path) < 5) {
    snprintf(out, cap, "%s", line);
    return;
  }
  snprintf(out, cap, "%s %s %s %s", range, perms, off, path);
}

static int has_line(const char *maps, const char *want) {
  char line[1024], got[1024];
  for (const char *p = maps; *p;) {
    size_t n = strcspn(p, "\n");
    snprintf(line, sizeof line, "%.*s", (int)n, p);
    strip_line(line, got, sizeof got);
    if (strcmp(got, want) == 0) return 1;
    p += n + (p[n] ? 1 : 0);
  }
  return 0;
}

static int stack_grows_down(void) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[1024];
  int in = 0, gd = -1;
  while (f && fgets(line, sizeof line, f)) {
    if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' ') && strstr(line, " rw")) in = strstr(line, "[stack]") != NULL;
    if (in && strncmp(line, "VmFlags:", 8) == 0) {
      gd = strstr(line, " gd") != NULL;
      break;
    }
  }
  if (f) fclose(f);
  return gd;
}

static uint8_t pattern(size_t page) { return (uint8_t)(page * 7 + 3); }

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  uint8_t *sparse = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sparse == MAP_FAILED) rt_die("mmap");
  for (size_t pg = 0; pg < PAGES; pg += 2) memset(sparse + pg * PAGE, pattern(pg), PAGE);
  /* Where the moved part goes: reserved now, so the address is free. */
  uint8_t *target = mmap(NULL, 8 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (target == MAP_FAILED) rt_die("mmap target");
  if (stack_grows_down() != 1) rt_die("[stack] has no gd flag");
  read_maps(maps_before, sizeof maps_before);

  rt_ready();
  rt_wait_go(argv[1]);

  /* Nothing of the sparse region touched yet. */
  static char maps_after[65536];
  read_maps(maps_after, sizeof maps_after);
  char line[1024], want[1024];
  for (const char *p = maps_before; *p;) {
    size_t n = strcspn(p, "\n");
    snprintf(line, sizeof line, "%.*s", (int)n, p);
    strip_line(line, want, sizeof want);
    RT_CHECK(has_line(maps_after, want), "mapping \"%s\" is not in /proc/self/maps after the restore", want);
    p += n + (p[n] ? 1 : 0);
  }
  RT_CHECK(stack_grows_down() == 1, "[stack] lost its gd (MAP_GROWSDOWN) flag");

  /* A child forked while pages 0-15 are missing sees their bytes. */
  pid_t child = fork();
  if (child == 0) {
    for (size_t pg = 0; pg < 16; pg += 2)
      if (sparse[pg * PAGE + 5] != pattern(pg)) _exit(10 + (int)pg);
    _exit(0);
  }
  int st = 0;
  waitpid(child, &st, 0);
  RT_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the forked child saw wrong bytes (status 0x%x)", st);

  /* Pages 16-23, still missing, moved elsewhere. */
  uint8_t *moved = mremap(sparse + 16 * PAGE, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target);
  RT_CHECK(moved == target, "mremap: %s", strerror(errno));
  if (moved == target)
    for (size_t pg = 0; pg < 8; pg += 2)
      RT_CHECK(moved[pg * PAGE + 9] == pattern(16 + pg), "moved page %zu: 0x%x, expected 0x%x", 16 + pg,
               moved[pg * PAGE + 9], pattern(16 + pg));

  /* Page 24, still missing, dropped: zeros now. */
  madvise(sparse + 24 * PAGE, PAGE, MADV_DONTNEED);
  RT_CHECK(sparse[24 * PAGE] == 0, "a page dropped with MADV_DONTNEED reads 0x%x, not zero", sparse[24 * PAGE]);

  /* The rest as stored. */
  for (size_t pg = 26; pg < PAGES; pg++) {
    uint8_t want_byte = pg % 2 ? 0 : pattern(pg);
    if (sparse[pg * PAGE + 100] != want_byte) {
      rt_fail("page %zu reads 0x%x, expected 0x%x", pg, sparse[pg * PAGE + 100], want_byte);
      break;
    }
  }
  return rt_finish();
}
