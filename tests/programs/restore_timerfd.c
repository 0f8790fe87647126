/* Restore test: timerfds (issue 13). Fd 40: CLOCK_MONOTONIC, nonblocking,
 * close-on-exec, first expiry 6 s after setup, then every 200 ms; fd 41: a
 * one-shot timer that expired once and was not read (1 tick, disarmed);
 * fd 42: every 20 ms, not read for 150 ms before the dump (fdinfo says
 * "ticks: 1" there: the kernel counts the missed intervals only when the
 * timer is read or asked for its time); fd 43: CLOCK_REALTIME with
 * TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, expiring at an absolute
 * time 60 s after setup (printed as "abs_expiry"); fd 44: CLOCK_BOOTTIME,
 * disarmed. After the restore each comes back and fires as it would have.
 *   usage: restore_timerfd GOFILE WORKDIR */
#include "rt_prog.h"

#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/timerfd.h>

#define FD_INTERVAL 40
#define FD_EXPIRED 41
#define FD_MISSED 42
#define FD_ABS 43
#define FD_OFF 44

static void arm(int fd, int flags, long long value_ns, long long interval_ns) {
  struct itimerspec its = {{interval_ns / 1000000000, interval_ns % 1000000000},
                           {value_ns / 1000000000, value_ns % 1000000000}};
  if (timerfd_settime(fd, flags, &its, NULL) != 0) rt_die("timerfd_settime fd %d", fd);
}

static double ts(struct timespec t) { return t.tv_sec + t.tv_nsec / 1e9; }

/* Within 50 ms: the same instant, measured twice. */
static int fabs_diff_ok(double a, double b) { return a - b < 0.05 && b - a < 0.05; }

/* The fdinfo line "KEY: VALUE" of fd, or "". */
static const char *fdinfo(int fd, const char *key) {
  static char line[256];
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  FILE *f = fopen(path, "r");
  if (!f) return "";
  size_t n = strlen(key);
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, key, n) && line[n] == ':') {
      fclose(f);
      char *v = line + n + 1;
      while (*v == ' ' || *v == '\t') v++;
      v[strcspn(v, "\n")] = 0;
      return v;
    }
  }
  fclose(f);
  return "";
}

static uint64_t read_ticks(int fd) {
  uint64_t v = 0;
  if (read(fd, &v, 8) != 8) return 0;
  return v;
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  rt_place(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC), FD_INTERVAL);
  if (fcntl(FD_INTERVAL, F_SETFD, FD_CLOEXEC) != 0) rt_die("F_SETFD");
  arm(FD_INTERVAL, 0, 6000000000LL, 200000000LL);
  rt_place(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), FD_EXPIRED);
  arm(FD_EXPIRED, 0, 1000000LL, 0);
  rt_place(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), FD_MISSED);
  arm(FD_MISSED, 0, 20000000LL, 20000000LL);
  rt_place(timerfd_create(CLOCK_REALTIME, 0), FD_ABS);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  long long abs_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec + 60000000000LL;
  arm(FD_ABS, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, abs_ns, 0);
  rt_place(timerfd_create(CLOCK_BOOTTIME, 0), FD_OFF);
  rt_sleep_ms(150);
  printf("abs_expiry %lld\n", abs_ns);
  rt_ready();
  rt_wait_go(argv[1]);

  RT_CHECK(fcntl(FD_INTERVAL, F_GETFD) == FD_CLOEXEC, "fd 40: FD_CLOEXEC lost");
  RT_CHECK(fcntl(FD_INTERVAL, F_GETFL) & O_NONBLOCK, "fd 40: O_NONBLOCK lost");
  RT_CHECK(!(fcntl(FD_ABS, F_GETFL) & O_NONBLOCK), "fd 43: O_NONBLOCK appeared");
  RT_CHECK(!strcmp(fdinfo(FD_INTERVAL, "clockid"), "1"), "fd 40: clockid %s, expected 1", fdinfo(FD_INTERVAL, "clockid"));
  RT_CHECK(!strcmp(fdinfo(FD_ABS, "clockid"), "0"), "fd 43: clockid %s, expected 0", fdinfo(FD_ABS, "clockid"));
  RT_CHECK(!strcmp(fdinfo(FD_OFF, "clockid"), "7"), "fd 44: clockid %s, expected 7", fdinfo(FD_OFF, "clockid"));
  RT_CHECK(!strcmp(fdinfo(FD_ABS, "settime flags"), "03"), "fd 43: settime flags %s, expected 03",
           fdinfo(FD_ABS, "settime flags"));

  /* fd 41: exactly the one unread expiry, then nothing. */
  RT_CHECK(read_ticks(FD_EXPIRED) == 1, "fd 41: the unread expiry is not 1 tick");
  uint64_t v;
  RT_CHECK(read(FD_EXPIRED, &v, 8) < 0 && errno == EAGAIN, "fd 41: more than one tick");
  /* fd 42: at least the 7 intervals that passed before the dump. */
  uint64_t missed = read_ticks(FD_MISSED);
  RT_CHECK(missed >= 7, "fd 42: %llu ticks, expected at least 7", (unsigned long long)missed);
  /* fd 44: still disarmed. */
  struct itimerspec its;
  RT_CHECK(timerfd_gettime(FD_OFF, &its) == 0 && ts(its.it_value) == 0 && ts(its.it_interval) == 0,
           "fd 44: armed after restore");
  /* fd 43: the same absolute expiry. */
  RT_CHECK(timerfd_gettime(FD_ABS, &its) == 0, "fd 43: timerfd_gettime");
  clock_gettime(CLOCK_REALTIME, &now);
  double expiry = now.tv_sec + now.tv_nsec / 1e9 + ts(its.it_value);
  RT_CHECK(ts(its.it_value) > 0 && fabs_diff_ok(expiry, abs_ns / 1e9), "fd 43: expires at %.3f, expected %.3f",
           expiry, abs_ns / 1e9);
  /* fd 40: time left before the dump (under 3 s), then every 200 ms. */
  RT_CHECK(timerfd_gettime(FD_INTERVAL, &its) == 0, "fd 40: timerfd_gettime");
  double left = ts(its.it_value);
  RT_CHECK(its.it_interval.tv_sec == 0 && its.it_interval.tv_nsec == 200000000, "fd 40: interval %.9f, expected 0.2",
           ts(its.it_interval));
  RT_CHECK(left > 0 && left < 5.9, "fd 40: %.3f s left, expected under 5.9 s (time to the dump passed)", left);
  RT_CHECK(read(FD_INTERVAL, &v, 8) < 0 && errno == EAGAIN, "fd 40: ticks before its first expiry");
  struct pollfd p = {.fd = FD_INTERVAL, .events = POLLIN};
  double t0 = rt_now(CLOCK_MONOTONIC);
  RT_CHECK(poll(&p, 1, 8000) == 1, "fd 40: did not fire");
  double fired = rt_now(CLOCK_MONOTONIC) - t0;
  /* Never early; late only by what a loaded machine's scheduler adds. */
  RT_CHECK(fired > left - 0.05 && fired < left + 1.0, "fd 40: fired after %.3f s, expected %.3f", fired, left);
  RT_CHECK(read_ticks(FD_INTERVAL) >= 1, "fd 40: no tick at its first expiry");
  t0 = rt_now(CLOCK_MONOTONIC);
  RT_CHECK(poll(&p, 1, 5000) == 1, "fd 40: did not fire again");
  double again = rt_now(CLOCK_MONOTONIC) - t0;
  RT_CHECK(again > 0.1 && again < 1.0, "fd 40: fired again after %.3f s, expected 0.2", again);
  return rt_finish();
}
