/* A target that sleeps: the main thread and one worker loop in nanosleep,
 * each bumping a counter whose address is printed (so a test can watch it
 * advance with process_vm_readv), then "ready". */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

/* "ready" only once the worker runs its own code (not still inside
 * clone3, where unwinders stop). */
static pthread_barrier_t started;

volatile unsigned long counter;

static void nap(void) {
  struct timespec ts = {0, 5 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

static void *worker(void *arg) {
  pthread_barrier_wait(&started);
  for (;;) nap();
  return arg;
}

int main(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  pthread_barrier_init(&started, NULL, 2);
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  pthread_barrier_wait(&started);
  printf("counter %p\nready\n", (void *)&counter);
  fflush(stdout);
  for (;;) {
    nap();
    counter++;
  }
}
