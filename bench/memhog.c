// A benchmark target: touches N MiB of anonymous memory with non-zero
// bytes, says "ready" on stdout, then sleeps until killed.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
  size_t len = mib << 20;
  unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  for (size_t i = 0; i < len; i += 4096) memset(p + i, (int)((i >> 12) % 251) + 1, 4096);
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
