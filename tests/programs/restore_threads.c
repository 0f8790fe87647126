/* Restore test: threads. Eight workers, each with its own __thread value,
 * signal mask and name; worker 0 blocked in pthread_cond_wait, worker 1
 * blocked on a mutex the main thread holds, worker 2 computing, the rest
 * in nanosleep loops. After the restore every thread checks its tid, TLS,
 * mask and name, and all meet at a barrier.
 *   usage: restore_threads GOFILE */
#include "rt_prog.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>

#define NWORKERS 8

static __thread uint64_t tls_value;
static __thread char tls_buf[64];
static pthread_mutex_t cond_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t started, finished;
static volatile int go_flag;
static int cond_flag;
static pid_t tids[NWORKERS];
static volatile uint64_t spin_counter;

/* Extra threads: one holds a robust mutex and exits after the restore
 * without unlocking it; one is blocked in pthread_join on another that
 * exits after the restore (clear_child_tid and robust lists restored). */
static pthread_mutex_t robust;
static pthread_t joined_thread, joiner_thread, robust_thread;
static volatile int robust_locked, joiner_result = -1;
static void *robust_owner(void *arg) {
  pthread_mutex_lock(&robust);
  robust_locked = 1;
  while (!go_flag) rt_sleep_ms(3);
  return arg; /* exits holding it */
}
static void *joined(void *arg) {
  while (!go_flag) rt_sleep_ms(3);
  return (void *)0x5151;
}
static void *joiner(void *arg) {
  void *ret = NULL;
  int r = pthread_join(joined_thread, &ret);
  joiner_result = r == 0 && ret == (void *)0x5151;
  return arg;
}
static __thread int fresh_tls = 17;
static void *fresh(void *arg) {
  fresh_tls += (int)(intptr_t)arg;
  return (void *)(intptr_t)fresh_tls;
}

static uint64_t tls_of(int i) { return 0x7100000000000000ull + 0x1111ull * (uint64_t)(i + 1); }
static int sig_of(int i) { return SIGRTMIN + 1 + i; }

static void check_self(int i) {
  pid_t tid = (pid_t)syscall(SYS_gettid);
  RT_CHECK(tid == tids[i], "worker %d: gettid() %d, was %d", i, tid, tids[i]);
  RT_CHECK(tls_value == tls_of(i), "worker %d: TLS 0x%llx, expected 0x%llx", i, (unsigned long long)tls_value,
           (unsigned long long)tls_of(i));
  char expect[64];
  snprintf(expect, sizeof expect, "tls buffer of worker %d", i);
  RT_CHECK(strcmp(tls_buf, expect) == 0, "worker %d: TLS buffer \"%s\"", i, tls_buf);
  sigset_t mask;
  pthread_sigmask(SIG_SETMASK, NULL, &mask);
  for (int s = 1; s < SIGRTMAX; s++) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    int want = s == sig_of(i) || s == SIGUSR2;
    if (sigismember(&mask, s) != want)
      rt_fail("worker %d: signal %d is %sblocked", i, s, sigismember(&mask, s) ? "" : "not ");
  }
  char name[16] = "", want_name[16];
  pthread_getname_np(pthread_self(), name, sizeof name);
  snprintf(want_name, sizeof want_name, "rs-worker-%d", i);
  RT_CHECK(strcmp(name, want_name) == 0, "worker %d: name \"%s\", expected \"%s\"", i, name, want_name);
}

static void *worker(void *arg) {
  int i = (int)(intptr_t)arg;
  tids[i] = (pid_t)syscall(SYS_gettid);
  tls_value = tls_of(i);
  snprintf(tls_buf, sizeof tls_buf, "tls buffer of worker %d", i);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, sig_of(i));
  sigaddset(&mask, SIGUSR2);
  pthread_sigmask(SIG_SETMASK, &mask, NULL);
  char name[16];
  snprintf(name, sizeof name, "rs-worker-%d", i);
  pthread_setname_np(pthread_self(), name);
  pthread_barrier_wait(&started);
  switch (i) {
    case 0:
      pthread_mutex_lock(&cond_mutex);
      while (!cond_flag) pthread_cond_wait(&cond, &cond_mutex);
      pthread_mutex_unlock(&cond_mutex);
      break;
    case 1:
      pthread_mutex_lock(&held);
      pthread_mutex_unlock(&held);
      break;
    case 2:
      while (!go_flag) spin_counter++;
      break;
    default:
      while (!go_flag) rt_sleep_ms(3);
      break;
  }
  check_self(i);
  pthread_barrier_wait(&finished);
  return arg;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 2);
  tls_value = 0x4d41494e;
  pthread_mutex_lock(&held);
  pthread_barrier_init(&started, NULL, NWORKERS + 1);
  pthread_barrier_init(&finished, NULL, NWORKERS + 1);
  pthread_t t[NWORKERS];
  for (int i = 0; i < NWORKERS; i++)
    if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) != 0) rt_die("pthread_create");
  pthread_barrier_wait(&started);
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&robust, &ma);
  if (pthread_create(&robust_thread, NULL, robust_owner, NULL) != 0 ||
      pthread_create(&joined_thread, NULL, joined, NULL) != 0 ||
      pthread_create(&joiner_thread, NULL, joiner, NULL) != 0)
    rt_die("pthread_create");
  while (!robust_locked) rt_sleep_ms(1);
  rt_sleep_ms(20); /* let worker 0 and 1 block, and the joiner */
  printf("ready\n");
  fflush(stdout);
  rt_wait_go(argv[1]);

  RT_CHECK(tls_value == 0x4d41494e, "main: TLS 0x%llx", (unsigned long long)tls_value);
  /* All threads are back: /proc agrees. */
  int n = 0;
  char path[64];
  for (int i = 0; i < NWORKERS; i++) {
    snprintf(path, sizeof path, "/proc/self/task/%d", tids[i]);
    if (access(path, F_OK) == 0) n++;
    else rt_fail("no %s", path);
  }
  (void)n;
  go_flag = 1;
  pthread_mutex_lock(&cond_mutex);
  cond_flag = 1;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&cond_mutex);
  pthread_mutex_unlock(&held);
  pthread_barrier_wait(&finished);
  for (int i = 0; i < NWORKERS; i++) pthread_join(t[i], NULL);

  pthread_join(joiner_thread, NULL);
  RT_CHECK(joiner_result == 1, "pthread_join blocked across the dump returned wrongly (%d)", joiner_result);
  pthread_join(robust_thread, NULL);
  int r = pthread_mutex_lock(&robust);
  RT_CHECK(r == EOWNERDEAD, "robust mutex whose owner died after the restore: lock returned %d (%s), expected EOWNERDEAD",
           r, strerror(r));
  if (r == EOWNERDEAD) {
    pthread_mutex_consistent(&robust);
    pthread_mutex_unlock(&robust);
  }
  /* New threads after the restore, with fresh TLS. */
  for (int i = 1; i <= 4; i++) {
    pthread_t f;
    void *ret = NULL;
    if (pthread_create(&f, NULL, fresh, (void *)(intptr_t)i) != 0) {
      rt_fail("pthread_create after the restore failed");
      break;
    }
    pthread_join(f, &ret);
    RT_CHECK((intptr_t)ret == 17 + i, "new thread %d: TLS %ld, expected %d", i, (long)(intptr_t)ret, 17 + i);
  }
  return rt_finish();
}
