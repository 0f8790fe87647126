/* A target with touched, non-zero heap memory, sleeping in pause():
 * 8 MiB by default (for the disk-full test), or argv[1] MiB (for dumps
 * that must be interrupted half-way through the memory phase). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 8;
  size_t size = mib << 20;
  unsigned char *p = malloc(size);
  if (!p) return 1;
  if (mib == 8) {
    for (size_t i = 0; i < size; i++) p[i] = (unsigned char)(i * 131 + 7) | 1;
  } else {
    /* memset is fast; one distinct word per page keeps pages apart. */
    memset(p, 0x5a, size);
    for (size_t i = 0; i < size; i += 4096) memcpy(p + i, &i, sizeof i);
  }
  printf("size %zu\n", size);
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
