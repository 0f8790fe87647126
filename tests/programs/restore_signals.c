/* Restore test: signals. An SA_SIGINFO|SA_RESTART handler, an ignored
 * signal, blocked pending signals (one standard queued with a value, two
 * real-time ones that must stay queued twice, one directed at a thread), an
 * alternate signal stack, and a periodic ITIMER_REAL whose SIGALRMs must
 * keep coming after the restore.   usage: restore_signals GOFILE */
#include "rt_prog.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/time.h>

static volatile int usr1_count, usr1_code, usr1_value, usr1_pid;
static volatile int rt_count, rt_values[4];
static volatile int alarm_count;
static volatile int hup_count;
static volatile uintptr_t hup_stack_addr;
static volatile int thread_sig_count, thread_sig_tid;
static char altstack[64 * 1024] __attribute__((aligned(64)));

static void on_usr1(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  usr1_code = si->si_code;
  usr1_value = si->si_value.sival_int;
  usr1_pid = si->si_pid;
  usr1_count++;
}
static void on_rt(int sig, siginfo_t *si, void *uc) {
  (void)sig, (void)uc;
  if (rt_count < 4) rt_values[rt_count] = si->si_value.sival_int;
  rt_count++;
}
static void on_alarm(int sig) {
  (void)sig;
  alarm_count++;
}
static void on_hup(int sig) {
  volatile int local = sig;
  hup_stack_addr = (uintptr_t)&local;
  hup_count++;
}
static void on_thread_sig(int sig) {
  (void)sig;
  thread_sig_tid = (int)syscall(SYS_gettid);
  thread_sig_count++;
}

static volatile int worker_tid, worker_go;
static void *worker(void *arg) {
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR1);
  sigaddset(&m, SIGRTMIN + 2);
  sigaddset(&m, SIGRTMIN + 3);
  sigaddset(&m, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &m, NULL);
  worker_tid = (int)syscall(SYS_gettid);
  while (!worker_go) rt_sleep_ms(2);
  /* A signal sent to this thread while it was blocked waits for it. */
  sigemptyset(&m);
  sigaddset(&m, SIGRTMIN + 3);
  pthread_sigmask(SIG_UNBLOCK, &m, NULL);
  return arg;
}

static int pending(int sig) {
  sigset_t p;
  sigpending(&p);
  return sigismember(&p, sig);
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 2);
  pid_t pid = getpid();

  struct sigaction sa = {0};
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGHUP);
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_sigaction = on_rt;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGRTMIN + 2, &sa, NULL);
  signal(SIGUSR2, SIG_IGN);
  struct sigaction alrm = {0};
  alrm.sa_handler = on_alarm;
  alrm.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &alrm, NULL);
  struct sigaction th = {0};
  th.sa_handler = on_thread_sig;
  sigaction(SIGRTMIN + 3, &th, NULL);

  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  if (sigaltstack(&ss, NULL) != 0) rt_die("sigaltstack");
  struct sigaction hup = {0};
  hup.sa_handler = on_hup;
  hup.sa_flags = SA_ONSTACK;
  sigaction(SIGHUP, &hup, NULL);

  /* Block, then queue: pending across the dump. */
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGRTMIN + 2);
  sigaddset(&block, SIGRTMIN + 3);
  sigprocmask(SIG_BLOCK, &block, NULL);
  union sigval v = {.sival_int = 1234};
  if (sigqueue(pid, SIGUSR1, v) != 0) rt_die("sigqueue");
  v.sival_int = 7;
  sigqueue(pid, SIGRTMIN + 2, v);
  v.sival_int = 8;
  sigqueue(pid, SIGRTMIN + 2, v);

  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) rt_die("pthread_create");
  while (!worker_tid) rt_sleep_ms(1);
  if (syscall(SYS_tgkill, pid, worker_tid, SIGRTMIN + 3) != 0) rt_die("tgkill");

  /* ITIMER_REAL every 50 ms: a few ticks before the dump. */
  struct itimerval it = {{0, 50000}, {0, 50000}};
  if (setitimer(ITIMER_REAL, &it, NULL) != 0) rt_die("setitimer");
  while (alarm_count < 2) rt_sleep_ms(5);
  rt_ready();
  rt_wait_go(argv[1]);
  int alarms_at_go = alarm_count;

  /* Actions. */
  struct sigaction cur;
  sigaction(SIGUSR1, NULL, &cur);
  RT_CHECK(cur.sa_sigaction == on_usr1, "SIGUSR1: handler %p, expected %p", (void *)cur.sa_sigaction, (void *)on_usr1);
  RT_CHECK((cur.sa_flags & (SA_SIGINFO | SA_RESTART)) == (SA_SIGINFO | SA_RESTART), "SIGUSR1: flags 0x%x",
           cur.sa_flags);
  RT_CHECK(sigismember(&cur.sa_mask, SIGHUP) == 1, "SIGUSR1: SIGHUP no longer in sa_mask");
  sigaction(SIGUSR2, NULL, &cur);
  RT_CHECK(cur.sa_handler == SIG_IGN, "SIGUSR2 is no longer ignored");
  raise(SIGUSR2); /* ignored: must not kill us */
  sigaction(SIGHUP, NULL, &cur);
  RT_CHECK(cur.sa_handler == on_hup && (cur.sa_flags & SA_ONSTACK), "SIGHUP: handler or SA_ONSTACK lost");

  /* Pending signals are still pending, and run their handlers. */
  RT_CHECK(pending(SIGUSR1), "SIGUSR1 is no longer pending");
  RT_CHECK(pending(SIGRTMIN + 2), "SIGRTMIN+2 is no longer pending");
  RT_CHECK(usr1_count == 0 && rt_count == 0, "handlers ran while the signals were blocked");
  sigprocmask(SIG_UNBLOCK, &block, NULL);
  RT_CHECK(usr1_count == 1, "SIGUSR1 handler ran %d times after unblocking", usr1_count);
  RT_CHECK(usr1_code == SI_QUEUE, "SIGUSR1 si_code %d, expected SI_QUEUE", usr1_code);
  RT_CHECK(usr1_value == 1234, "SIGUSR1 si_value %d, expected 1234", usr1_value);
  RT_CHECK(usr1_pid == pid, "SIGUSR1 si_pid %d, expected %d", usr1_pid, pid);
  RT_CHECK(rt_count == 2, "SIGRTMIN+2 handler ran %d times, expected 2 (queued twice)", rt_count);
  RT_CHECK(rt_values[0] == 7 && rt_values[1] == 8, "SIGRTMIN+2 values %d, %d; expected 7, 8", rt_values[0],
           rt_values[1]);
  RT_CHECK(thread_sig_count == 0, "the thread-directed signal ran in the main thread");

  /* The thread-directed signal waits for its thread. */
  worker_go = 1;
  pthread_join(t, NULL);
  RT_CHECK(thread_sig_count == 1 && thread_sig_tid == worker_tid,
           "thread-directed SIGRTMIN+3: ran %d times in tid %d, expected once in %d", thread_sig_count,
           thread_sig_tid, worker_tid);

  /* The alternate stack. */
  stack_t now;
  sigaltstack(NULL, &now);
  RT_CHECK(now.ss_sp == altstack && now.ss_size == sizeof altstack && !(now.ss_flags & SS_DISABLE),
           "sigaltstack: sp %p size %zu flags %d; expected %p %zu", now.ss_sp, now.ss_size, now.ss_flags,
           (void *)altstack, sizeof altstack);
  raise(SIGHUP);
  RT_CHECK(hup_count == 1, "SIGHUP handler ran %d times", hup_count);
  RT_CHECK(hup_stack_addr >= (uintptr_t)altstack && hup_stack_addr < (uintptr_t)altstack + sizeof altstack,
           "SIGHUP handler ran at %p, not on the alternate stack %p", (void *)hup_stack_addr, (void *)altstack);

  /* The interval timer still runs and still ticks every 50 ms. */
  struct itimerval left;
  getitimer(ITIMER_REAL, &left);
  RT_CHECK(left.it_interval.tv_sec == 0 && left.it_interval.tv_usec == 50000, "ITIMER_REAL interval %ld.%06ld",
           (long)left.it_interval.tv_sec, (long)left.it_interval.tv_usec);
  double until = rt_now(CLOCK_MONOTONIC) + 5;
  while (alarm_count < alarms_at_go + 3 && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(5);
  RT_CHECK(alarm_count >= alarms_at_go + 3, "SIGALRM: %d ticks in 5 s after the restore", alarm_count - alarms_at_go);
  it.it_value.tv_usec = it.it_interval.tv_usec = 0;
  setitimer(ITIMER_REAL, &it, NULL);
  return rt_finish();
}
