/* Restore test: POSIX timers (issue 13). Timers 0..3 are made, then 1 is
 * deleted, so the ids the program holds have a gap: 0 (CLOCK_MONOTONIC,
 * SIGRTMIN with value 0x1111, first expiry 6 s after setup, then every
 * 300 ms), 2 (CLOCK_REALTIME, SIGEV_THREAD_ID aimed at the main thread,
 * SIGRTMIN+1 with value 0x2222, one-shot in 5 s) and 3 (CLOCK_BOOTTIME,
 * SIGEV_NONE, 30 s). The signals are blocked until the go file appears.
 * After the restore each id names the same timer: its settings, time left
 * and interval are back, and its signals arrive with their values and
 * timer ids.
 *   usage: restore_posix_timers GOFILE WORKDIR */
#include "rt_prog.h"

#include <stdint.h>
#include <sys/syscall.h>

static volatile int fired[2];
static volatile long value_of[2];
static volatile int timer_of[2];

static void on_timer(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  int i = sig - SIGRTMIN;
  if (i < 0 || i > 1) return;
  fired[i]++;
  value_of[i] = (long)si->si_value.sival_ptr;
  timer_of[i] = si->si_timerid;
}

static timer_t make(clockid_t clock, int notify, int signo, long value) {
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = notify;
  sev.sigev_signo = signo;
  sev.sigev_value.sival_ptr = (void *)value;
  if (notify & SIGEV_THREAD_ID) sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
  timer_t t;
  if (timer_create(clock, &sev, &t) != 0) rt_die("timer_create");
  return t;
}

static void arm(timer_t t, long long value_ns, long long interval_ns) {
  struct itimerspec its = {{interval_ns / 1000000000, interval_ns % 1000000000},
                           {value_ns / 1000000000, value_ns % 1000000000}};
  if (timer_settime(t, 0, &its, NULL) != 0) rt_die("timer_settime");
}

static double ts(struct timespec t) { return t.tv_sec + t.tv_nsec / 1e9; }

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_timer;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGRTMIN, &sa, NULL);
  sigaction(SIGRTMIN + 1, &sa, NULL);
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGRTMIN);
  sigaddset(&block, SIGRTMIN + 1);
  sigprocmask(SIG_BLOCK, &block, NULL);
  timer_t t0 = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN, 0x1111);
  timer_t t1 = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN, 0x9999);
  timer_t t2 = make(CLOCK_REALTIME, SIGEV_SIGNAL | SIGEV_THREAD_ID, SIGRTMIN + 1, 0x2222);
  timer_t t3 = make(CLOCK_BOOTTIME, SIGEV_NONE, 0, 0);
  if ((long)t0 != 0 || (long)t1 != 1 || (long)t2 != 2 || (long)t3 != 3)
    rt_die("unexpected timer ids %ld %ld %ld %ld", (long)t0, (long)t1, (long)t2, (long)t3);
  timer_delete(t1);
  arm(t0, 6000000000LL, 300000000LL);
  arm(t2, 5000000000LL, 0);
  arm(t3, 30000000000LL, 0);
  rt_ready();
  rt_wait_go(argv[1]);

  struct itimerspec its;
  RT_CHECK(timer_gettime(t0, &its) == 0, "timer 0 is gone: %s", strerror(errno));
  double left0 = ts(its.it_value);
  /* Less than armed: the time that passed before the dump (a few ms at
   * least; timers stand still while the process is not there). */
  RT_CHECK(left0 > 0 && left0 < 5.999, "timer 0: %.3f s left, expected under 5.999 s", left0);
  RT_CHECK(its.it_interval.tv_sec == 0 && its.it_interval.tv_nsec == 300000000, "timer 0: interval %.9f",
           ts(its.it_interval));
  RT_CHECK(timer_gettime(t1, &its) < 0 && errno == EINVAL, "timer 1 exists again");
  RT_CHECK(timer_gettime(t2, &its) == 0 && ts(its.it_value) > 0 && ts(its.it_value) < 4.999 && ts(its.it_interval) == 0,
           "timer 2: %.3f s left, interval %.3f", ts(its.it_value), ts(its.it_interval));
  RT_CHECK(timer_gettime(t3, &its) == 0 && ts(its.it_value) > 25 && ts(its.it_value) <= 30,
           "timer 3 (SIGEV_NONE): %.3f s left, expected 25-30", ts(its.it_value));
  sigprocmask(SIG_UNBLOCK, &block, NULL);
  double start = rt_now(CLOCK_MONOTONIC);
  while ((fired[0] < 3 || fired[1] < 1) && rt_now(CLOCK_MONOTONIC) - start < 10) rt_sleep_ms(5);
  double took = rt_now(CLOCK_MONOTONIC) - start;
  RT_CHECK(fired[1] == 1, "timer 2 fired %d times, expected once", fired[1]);
  RT_CHECK(value_of[1] == 0x2222 && timer_of[1] == 2, "timer 2's signal: value %#lx timer %d", value_of[1],
           timer_of[1]);
  RT_CHECK(fired[0] >= 3, "timer 0 fired %d times in 10 s", fired[0]);
  RT_CHECK(value_of[0] == 0x1111 && timer_of[0] == 0, "timer 0's signal: value %#lx timer %d", value_of[0],
           timer_of[0]);
  /* Three expiries: the time left, then two intervals; never sooner. No
   * upper bound (a loaded machine delivers late): the bounded wait above
   * already failed if the restored interval were much longer. */
  RT_CHECK(took > left0 + 0.5, "timer 0 fired 3 times in %.3f s, expected at least %.3f", took, left0 + 0.6);
  /* A new timer works, and takes an id none of the others has. */
  timer_t t4 = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0);
  RT_CHECK((long)t4 != 0 && (long)t4 != 2 && (long)t4 != 3, "a new timer got id %ld, which is taken", (long)t4);
  return rt_finish();
}
