/* A target blocked in a system call: read(0) on a pipe that never gets
 * data, in the main thread and in a worker (which reads a pipe of its own). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

/* "ready" only once the worker runs its own code (not still inside
 * clone3, where unwinders stop). */
static pthread_barrier_t started;

static int idle_pipe[2];

static void *worker(void *arg) {
  pthread_barrier_wait(&started);
  char c;
  for (;;) read(idle_pipe[0], &c, 1);
  return arg;
}

int main(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  if (pipe(idle_pipe) != 0) return 1;
  pthread_barrier_init(&started, NULL, 2);
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  pthread_barrier_wait(&started);
  printf("ready\n");
  fflush(stdout);
  char buf[64];
  for (;;)
    if (read(0, buf, sizeof buf) == 0) pause(); /* EOF: keep waiting */
}
