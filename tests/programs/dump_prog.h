/* What the dump targets (tests/programs/dump_*.c) share: a start that dies
 * with the test and says "ready" only once a worker thread runs. */
#ifndef CKPT_TESTS_DUMP_PROG_H
#define CKPT_TESTS_DUMP_PROG_H

#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

/* "ready" only once the worker runs its own code (not still inside
 * clone3, where unwinders stop): the worker calls dp_worker_started() first. */
static pthread_barrier_t dp_started;

static void dp_worker_started(void) { pthread_barrier_wait(&dp_started); }

/* Dies with its parent (the test); starts `worker`, waits until it runs,
 * then prints "counter ADDR" and "ready". Returns nonzero on failure. */
static int dp_start_worker_then_ready(void *(*worker)(void *), volatile unsigned long *counter) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  pthread_barrier_init(&dp_started, NULL, 2);
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  pthread_barrier_wait(&dp_started);
  printf("counter %p\nready\n", (void *)counter);
  fflush(stdout);
  return 0;
}

#endif
