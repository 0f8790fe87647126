/* A target that sleeps: the main thread and one worker loop in nanosleep,
 * each bumping a counter whose address is printed (so a test can watch it
 * advance with process_vm_readv), then "ready".
 *   usage: dump_sleeper [itimer]
 * "itimer": a SIGALRM handler and ITIMER_REAL every 100 us, so signals keep
 * arriving while a dump borrows the threads for its injected syscalls. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
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

static volatile unsigned long alarms;
static void on_alarm(int sig) {
  (void)sig;
  alarms++;
}

int main(int argc, char **argv) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  if (argc > 1 && strcmp(argv[1], "itimer") == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    struct itimerval every = {{0, 100}, {0, 100}};
    if (sigaction(SIGALRM, &sa, NULL) != 0 || setitimer(ITIMER_REAL, &every, NULL) != 0) return 1;
  }
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
