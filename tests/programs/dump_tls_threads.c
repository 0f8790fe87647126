/* Target of the gcore-parity test: the main thread and four workers, each
 * with its own value of a __thread variable, blocked in different ways:
 *   worker 1: pthread_cond_wait      worker 2: read() on an idle pipe
 *   worker 3: a nanosleep loop       worker 4: a busy compute loop
 * Prints "ready" once every thread has set its TLS value, then waits to be
 * killed. Dies with its parent (PR_SET_PDEATHSIG). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

__thread long tls_var;
long global_array[8] = {11, 22, 33, 44, 55, 66, 77, 88};
int global_int = 123456789;
const char *global_str = "dump_tls_threads global";
volatile unsigned long compute_counter;

static pthread_barrier_t started;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int go;
static int idle_pipe[2];

static void *cond_worker(void *arg) {
  tls_var = 0x1111;
  pthread_barrier_wait(&started);
  pthread_mutex_lock(&mutex);
  while (!go) pthread_cond_wait(&cond, &mutex);
  pthread_mutex_unlock(&mutex);
  return arg;
}

static void *read_worker(void *arg) {
  tls_var = 0x2222;
  pthread_barrier_wait(&started);
  char c;
  for (;;) read(idle_pipe[0], &c, 1);
  return arg;
}

static void *sleep_worker(void *arg) {
  tls_var = 0x3333;
  pthread_barrier_wait(&started);
  struct timespec ts = {0, 10 * 1000 * 1000};
  for (;;) nanosleep(&ts, NULL);
  return arg;
}

static void *compute_worker(void *arg) {
  tls_var = 0x4444;
  pthread_barrier_wait(&started);
  for (;;) compute_counter = compute_counter * 3 + 1;
  return arg;
}

int main(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  tls_var = 0x1000;
  if (pipe(idle_pipe) != 0) return 1;
  pthread_barrier_init(&started, NULL, 5);
  void *(*workers[4])(void *) = {cond_worker, read_worker, sleep_worker, compute_worker};
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    if (pthread_create(&t[i], NULL, workers[i], NULL) != 0) return 1;
  pthread_barrier_wait(&started);
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
