/* A small dynamically linked program with two threads that just sleeps: the
 * target of the gcore tests. Prints "pid PID", "tids TID0 TID1" and "ready"
 * (the lines tests/support/spawned_process.h reads) once both threads
 * exist, then waits to be killed. It dies with its parent (PR_SET_PDEATHSIG)
 * so a crashed test leaves nothing behind. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

static pthread_barrier_t started;
static volatile pid_t worker_tid;

static void *worker(void *arg) {
  (void)arg;
  worker_tid = gettid();
  pthread_barrier_wait(&started);
  for (;;) pause();
  return NULL;
}

int main(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* Let a sibling gdb attach under Yama ptrace_scope=1. */
  prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
  if (getppid() == 1) return 1; /* parent already gone */
  pthread_barrier_init(&started, NULL, 2);
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 1;
  pthread_barrier_wait(&started);
  printf("pid %d\ntids %d %d\nready\n", (int)getpid(), (int)gettid(), (int)worker_tid);
  fflush(stdout);
  for (;;) pause();
}
