/* Restore test: threads blocked in system calls across the dump. Each
 * worker blocks in one call; after the restore the main thread checks that
 * none returned early (no spurious EINTR from the restore), then releases
 * them one by one and checks each call's result.
 *   usage: restore_syscalls GOFILE */
#include "rt_prog.h"

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/select.h>
#include <sys/syscall.h>

enum { W_READ, W_POLL, W_SELECT, W_SIGWAIT, W_PAUSE, W_ABS_SLEEP, W_REL_SLEEP, W_COUNT };
static const char *names[W_COUNT] = {"read", "poll", "select", "sigwaitinfo", "pause", "clock_nanosleep(ABSTIME)",
                                     "nanosleep"};

static int pipes[3][2];
static volatile int done[W_COUNT];
static volatile long result[W_COUNT];
static volatile int err[W_COUNT];
static volatile pid_t tids[W_COUNT];
static volatile int usr2_count;
static volatile int pause_saw_handler;
static struct timespec abs_deadline;
static double t_rel_start;

static void on_usr2(int sig) {
  (void)sig;
  usr2_count++;
}

static void *worker(void *arg) {
  int w = (int)(intptr_t)arg;
  tids[w] = (pid_t)syscall(SYS_gettid);
  char c;
  long r = 0;
  switch (w) {
    case W_READ:
      r = read(pipes[0][0], &c, 1);
      break;
    case W_POLL: {
      struct pollfd p = {pipes[1][0], POLLIN, 0};
      r = poll(&p, 1, -1);
      break;
    }
    case W_SELECT: {
      fd_set s;
      FD_ZERO(&s);
      FD_SET(pipes[2][0], &s);
      r = select(pipes[2][0] + 1, &s, NULL, NULL, NULL);
      break;
    }
    case W_SIGWAIT: {
      sigset_t m;
      sigemptyset(&m);
      sigaddset(&m, SIGUSR1);
      /* signal(7): sigtimedwait fails with EINTR after the thread was
       * stopped, ptrace stops included, so the dump's freeze itself
       * interrupts it (in the original too): a robust caller retries. */
      do r = sigwaitinfo(&m, NULL);
      while (r < 0 && errno == EINTR);
      break;
    }
    case W_PAUSE: {
      sigset_t m;
      sigemptyset(&m);
      sigaddset(&m, SIGUSR2);
      pthread_sigmask(SIG_UNBLOCK, &m, NULL);
      r = pause();
      pause_saw_handler = usr2_count;
      break;
    }
    case W_ABS_SLEEP:
      r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs_deadline, NULL);
      if (r) errno = (int)r, r = -1;
      break;
    case W_REL_SLEEP: {
      struct timespec ts = {2, 0};
      r = nanosleep(&ts, NULL);
      break;
    }
  }
  result[w] = r;
  err[w] = r < 0 ? errno : 0;
  __atomic_store_n(&done[w], 1, __ATOMIC_SEQ_CST);
  return NULL;
}

static int wait_done(int w, double timeout_s) {
  double until = rt_now(CLOCK_MONOTONIC) + timeout_s;
  while (!__atomic_load_n(&done[w], __ATOMIC_SEQ_CST) && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(2);
  if (!done[w]) rt_fail("%s did not return after it was released", names[w]);
  return done[w];
}

/* "S" in /proc: the thread sleeps (in its call). */
static int sleeping(pid_t tid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  return p && p[1] == ' ' && p[2] == 'S';
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 2);
  for (int i = 0; i < 3; i++)
    if (pipe(pipes[i]) != 0) rt_die("pipe");
  /* SIGUSR1 for sigwaitinfo and SIGUSR2 for pause: blocked everywhere but
   * in the pause thread (for SIGUSR2). */
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR1);
  sigaddset(&m, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &m, NULL);
  struct sigaction sa = {0};
  sa.sa_handler = on_usr2;
  sigaction(SIGUSR2, &sa, NULL);
  clock_gettime(CLOCK_MONOTONIC, &abs_deadline);
  abs_deadline.tv_sec += 2;
  t_rel_start = rt_now(CLOCK_MONOTONIC);
  pthread_t t[W_COUNT];
  for (int w = 0; w < W_COUNT; w++)
    if (pthread_create(&t[w], NULL, worker, (void *)(intptr_t)w) != 0) rt_die("pthread_create");
  /* Every worker asleep in its call. */
  for (int w = 0; w < W_COUNT; w++) {
    while (!tids[w]) rt_sleep_ms(1);
    while (!sleeping(tids[w])) rt_sleep_ms(1);
  }
  rt_sleep_ms(20);
  rt_ready();
  rt_wait_go(argv[1]);

  rt_sleep_ms(50);
  for (int w = 0; w < W_COUNT; w++)
    if (done[w] && w != W_ABS_SLEEP && w != W_REL_SLEEP)
      rt_fail("%s returned %ld (%s) before it was released", names[w], (long)result[w], strerror(err[w]));

  if (write(pipes[0][1], "a", 1) != 1) rt_die("write");
  if (wait_done(W_READ, 5)) RT_CHECK(result[W_READ] == 1, "read returned %ld (%s)", result[W_READ], strerror(err[W_READ]));
  if (write(pipes[1][1], "b", 1) != 1) rt_die("write");
  if (wait_done(W_POLL, 5)) RT_CHECK(result[W_POLL] == 1, "poll returned %ld (%s)", result[W_POLL], strerror(err[W_POLL]));
  if (write(pipes[2][1], "c", 1) != 1) rt_die("write");
  if (wait_done(W_SELECT, 5))
    RT_CHECK(result[W_SELECT] == 1, "select returned %ld (%s)", result[W_SELECT], strerror(err[W_SELECT]));
  syscall(SYS_tgkill, getpid(), tids[W_SIGWAIT], SIGUSR1);
  if (wait_done(W_SIGWAIT, 5))
    RT_CHECK(result[W_SIGWAIT] == SIGUSR1, "sigwaitinfo returned %ld (%s)", result[W_SIGWAIT], strerror(err[W_SIGWAIT]));
  syscall(SYS_tgkill, getpid(), tids[W_PAUSE], SIGUSR2);
  if (wait_done(W_PAUSE, 5)) {
    RT_CHECK(result[W_PAUSE] == -1 && err[W_PAUSE] == EINTR, "pause returned %ld (%s)", result[W_PAUSE],
             strerror(err[W_PAUSE]));
    RT_CHECK(pause_saw_handler == 1, "pause returned without the handler having run");
  }
  if (wait_done(W_ABS_SLEEP, 10)) {
    RT_CHECK(result[W_ABS_SLEEP] == 0, "clock_nanosleep returned %ld (%s)", result[W_ABS_SLEEP],
             strerror(err[W_ABS_SLEEP]));
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    RT_CHECK(now.tv_sec > abs_deadline.tv_sec ||
                 (now.tv_sec == abs_deadline.tv_sec && now.tv_nsec >= abs_deadline.tv_nsec),
             "clock_nanosleep(TIMER_ABSTIME) returned before its deadline");
  }
  if (wait_done(W_REL_SLEEP, 10)) {
    RT_CHECK(result[W_REL_SLEEP] == 0, "nanosleep returned %ld (%s)", result[W_REL_SLEEP], strerror(err[W_REL_SLEEP]));
    RT_CHECK(rt_now(CLOCK_MONOTONIC) - t_rel_start >= 2.0, "nanosleep(2 s) returned after %.3f s",
             rt_now(CLOCK_MONOTONIC) - t_rel_start);
  }
  for (int w = 0; w < W_COUNT; w++) pthread_join(t[w], NULL);
  return rt_finish();
}
