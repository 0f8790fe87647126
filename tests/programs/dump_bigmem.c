/* A target with 8 MiB of touched, non-zero heap memory (for the disk-full
 * test), sleeping in pause(). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  size_t size = 8u << 20;
  unsigned char *p = malloc(size);
  if (!p) return 1;
  for (size_t i = 0; i < size; i++) p[i] = (unsigned char)(i * 131 + 7) | 1;
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
