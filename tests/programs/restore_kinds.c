/* Restore test: kernel objects restore may not support yet. One object per
 * MODE; after a restore the program checks the object still works. The
 * test accepts either that, or a clean one-line refusal from imgtool.
 *   usage: restore_kinds GOFILE WORKDIR MODE
 *   MODE: socketpair eventfd timerfd epoll signalfd posix-timer inotify */
#include "rt_prog.h"

#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#define FD_A 40
#define FD_B 41

int main(int argc, char **argv) {
  rt_start(argc, argv, 4);
  const char *mode = argv[3];
  timer_t timer;
  if (!strcmp(mode, "socketpair")) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) rt_die("socketpair");
    rt_place(sv[0], FD_A);
    rt_place(sv[1], FD_B);
    if (write(FD_A, "queued", 6) != 6) rt_die("write");
  } else if (!strcmp(mode, "eventfd")) {
    rt_place(eventfd(5, 0), FD_A);
  } else if (!strcmp(mode, "timerfd")) {
    rt_place(timerfd_create(CLOCK_MONOTONIC, 0), FD_A);
    struct itimerspec its = {{0, 20000000}, {0, 20000000}};
    timerfd_settime(FD_A, 0, &its, NULL);
  } else if (!strcmp(mode, "epoll")) {
    int p[2];
    if (pipe(p) != 0) rt_die("pipe");
    rt_place(p[0], FD_B);
    if (write(p[1], "x", 1) != 1) rt_die("write");
    rt_place(epoll_create1(0), FD_A);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1234};
    if (epoll_ctl(FD_A, EPOLL_CTL_ADD, FD_B, &ev) != 0) rt_die("epoll_ctl");
  } else if (!strcmp(mode, "signalfd")) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    rt_place(signalfd(-1, &m, 0), FD_A);
  } else if (!strcmp(mode, "posix-timer")) {
    signal(SIGRTMIN, rt_count_tick);
    struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN};
    if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) rt_die("timer_create");
    struct itimerspec its = {{0, 20000000}, {0, 20000000}};
    timer_settime(timer, 0, &its, NULL);
  } else if (!strcmp(mode, "inotify")) {
    rt_place(inotify_init1(0), FD_A);
    if (inotify_add_watch(FD_A, argv[2], IN_CREATE) < 0) rt_die("inotify_add_watch");
  } else {
    rt_die("unknown mode %s", mode);
  }
  rt_ready();
  rt_wait_go(argv[1]);

  char buf[64];
  if (!strcmp(mode, "socketpair")) {
    ssize_t n = read(FD_B, buf, sizeof buf);
    RT_CHECK(n == 6 && !memcmp(buf, "queued", 6), "socketpair: read %zd", n);
    RT_CHECK(write(FD_B, "back", 4) == 4 && read(FD_A, buf, 4) == 4 && !memcmp(buf, "back", 4),
             "socketpair: round trip failed");
  } else if (!strcmp(mode, "eventfd")) {
    uint64_t v = 0;
    RT_CHECK(read(FD_A, &v, 8) == 8 && v == 5, "eventfd: counter %llu, expected 5", (unsigned long long)v);
  } else if (!strcmp(mode, "timerfd")) {
    uint64_t v = 0;
    RT_CHECK(read(FD_A, &v, 8) == 8 && v >= 1, "timerfd: read %llu", (unsigned long long)v);
  } else if (!strcmp(mode, "epoll")) {
    struct epoll_event ev;
    int n = epoll_wait(FD_A, &ev, 1, 1000);
    RT_CHECK(n == 1 && ev.data.u64 == 0x1234, "epoll: %d events", n);
  } else if (!strcmp(mode, "signalfd")) {
    raise(SIGUSR1);
    struct signalfd_siginfo si;
    RT_CHECK(read(FD_A, &si, sizeof si) == sizeof si && si.ssi_signo == SIGUSR1, "signalfd: no SIGUSR1");
  } else if (!strcmp(mode, "posix-timer")) {
    int t0 = rt_timer_ticks;
    double until = rt_now(CLOCK_MONOTONIC) + 5;
    while (rt_timer_ticks < t0 + 3 && rt_now(CLOCK_MONOTONIC) < until) rt_sleep_ms(5);
    RT_CHECK(rt_timer_ticks >= t0 + 3, "POSIX timer: %d ticks after the restore", rt_timer_ticks - t0);
  } else if (!strcmp(mode, "inotify")) {
    char path[4096];
    snprintf(path, sizeof path, "%s/inotify-new", argv[2]);
    fclose(fopen(path, "w"));
    char ev[4096];
    RT_CHECK(read(FD_A, ev, sizeof ev) > 0, "inotify: no event");
  }
  return rt_finish();
}
