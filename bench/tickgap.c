// Reads the tick file of a memhog started with --ticks FILE (see ticks.h).
//
//   tickgap reset FILE   clear the recorded largest gap (waits for memhog
//                        to acknowledge, so the window starts now)
//   tickgap read FILE    wait until memhog has ticked twice more (so a stop
//                        that just ended is accounted for), then print the
//                        largest gap since the reset, in seconds
//
// Exits 1 if memhog does not tick within 10 s (stopped, dead, or the file
// is not a tick file).
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ticks.h"

static int wait_until(int (*cond)(struct ticks *, uint64_t), struct ticks *t, uint64_t v) {
  for (int i = 0; i < 10000; i++) {  // 10 s in 1 ms steps
    if (cond(t, v)) return 0;
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
  }
  return -1;
}

static int acked(struct ticks *t, uint64_t req) {
  return __atomic_load_n(&t->reset_ack, __ATOMIC_ACQUIRE) == req;
}

static int ticked(struct ticks *t, uint64_t seq) {
  return __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE) >= seq;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "reset") != 0 && strcmp(argv[1], "read") != 0)) {
    fprintf(stderr, "usage: tickgap reset|read FILE\n");
    return 2;
  }
  int fd = open(argv[2], O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    perror(argv[2]);
    return 1;
  }
  struct ticks *t = mmap(NULL, TICKS_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (t == MAP_FAILED || __atomic_load_n(&t->magic, __ATOMIC_ACQUIRE) != TICKS_MAGIC) {
    fprintf(stderr, "tickgap: %s is not a memhog tick file\n", argv[2]);
    return 1;
  }
  if (strcmp(argv[1], "reset") == 0) {
    uint64_t req = __atomic_add_fetch(&t->reset_req, 1, __ATOMIC_ACQ_REL);
    if (wait_until(acked, t, req) < 0) {
      fprintf(stderr, "tickgap: memhog did not acknowledge the reset within 10 s\n");
      return 1;
    }
    return 0;
  }
  uint64_t seq = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
  if (wait_until(ticked, t, seq + 2) < 0) {
    fprintf(stderr, "tickgap: memhog is not ticking (stopped or dead?)\n");
    return 1;
  }
  printf("%.6f\n", (double)__atomic_load_n(&t->max_gap_ns, __ATOMIC_RELAXED) / 1e9);
  return 0;
}
