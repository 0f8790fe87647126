/* Restore test: a small process for the restore mechanics themselves
 * (exit status, restoring twice, --detach). A worker thread counts; heap
 * data carries a checksum. After the go file appears the main thread checks
 * that the data survived and the worker still counts, appends a line to
 * WORKDIR/report.txt (opened only then, so the restore does not depend on
 * it), and then, by MODE:
 *   exit:N    exits with status N
 *   signal:N  dies of signal N
 *   run       appends "tick N" lines to the report every 20 ms, forever
 *   usage: restore_counter GOFILE WORKDIR MODE */
#include "rt_prog.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>

static volatile uint64_t counter;
static volatile int stop;
static uint64_t *heap;
#define HEAP_WORDS (256 * 1024)

static void *count(void *arg) {
  while (!stop) counter++;
  return arg;
}

static uint64_t sum(void) {
  uint64_t s = 0;
  for (size_t i = 0; i < HEAP_WORDS; i++) s = s * 31 + heap[i];
  return s;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  heap = malloc(HEAP_WORDS * 8);
  if (!heap) rt_die("malloc");
  for (size_t i = 0; i < HEAP_WORDS; i++) heap[i] = i * 0x9e3779b97f4a7c15ull;
  uint64_t want = sum();
  pthread_t t;
  if (pthread_create(&t, NULL, count, NULL) != 0) rt_die("pthread_create");
  while (counter < 1000) rt_sleep_ms(1);
  printf("pid %d\n", getpid());
  rt_ready();
  rt_wait_go(argv[1]);

  rt_report_to(argv[2]);
  RT_CHECK(sum() == want, "heap checksum differs");
  uint64_t c0 = counter;
  double until = rt_now(CLOCK_MONOTONIC) + 10;
  while (counter < c0 + 100000 && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(1);
  RT_CHECK(counter >= c0 + 100000, "the counting thread stopped at %llu", (unsigned long long)counter);
  stop = 1;
  pthread_join(t, NULL);
  rt_end_as(argv[3], rt_finish());
}
