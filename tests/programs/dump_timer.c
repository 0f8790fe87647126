/* A target whose POSIX timer sends it SIGUSR1 every 200 us, so that
 * signals keep arriving while the dump borrows a thread for injected
 * syscalls. Prints "counter ADDR" (the handler's tick count) and "ready". */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long ticks;

static void on_tick(int sig) {
  (void)sig;
  ticks++;
}

int main(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_tick;
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGUSR1, &sa, NULL) != 0) return 1;
  struct sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGUSR1;
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0) return 1;
  struct itimerspec its = {{0, 200000}, {0, 200000}};
  if (timer_settime(timer, 0, &its, NULL) != 0) return 1;
  printf("counter %lx\n", (unsigned long)&ticks);
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
