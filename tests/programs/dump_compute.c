/* A target that computes: the main thread and one worker spin, updating a
 * volatile global whose address is printed before "ready". */
#include "dump_prog.h"

volatile unsigned long counter;
volatile unsigned long worker_counter;

static void *worker(void *arg) {
  dp_worker_started();
  for (;;) worker_counter++;
  return arg;
}

int main(void) {
  if (dp_start_worker_then_ready(worker, &counter) != 0) return 1;
  for (;;) counter++;
}
