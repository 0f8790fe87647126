/* A target that sleeps: the main thread and one worker loop in nanosleep,
 * each bumping a counter whose address is printed (so a test can watch it
 * advance with process_vm_readv), then "ready". */
#include "dump_prog.h"

#include <time.h>

volatile unsigned long counter;

static void nap(void) {
  struct timespec ts = {0, 5 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

static void *worker(void *arg) {
  dp_worker_started();
  for (;;) nap();
  return arg;
}

int main(void) {
  if (dp_start_worker_then_ready(worker, &counter) != 0) return 1;
  for (;;) {
    nap();
    counter++;
  }
}
