/* Shared by the restore test programs (tests/programs/restore_*.c).
 *
 * Shape of every program: set up state, print "KEY value" lines and then
 * "ready" on stdout, and wait until the file named by argv[1] exists (the
 * test creates it after the dump, before the restore). The restored program
 * then checks itself and exits 0, or prints what went wrong to stderr (a
 * regular file the test reads back) and exits non-zero.
 *
 * After "ready" nothing may go to stdout: it was a pipe to the test, which
 * comes back as a pipe with no reader. */
#ifndef CKPT_RESTORE_RT_PROG_H
#define CKPT_RESTORE_RT_PROG_H

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int rt_failures;

/* Records a failed check (stderr) and carries on. */
static __attribute__((unused)) void __attribute__((format(printf, 1, 2))) rt_fail(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "FAIL: %s\n", buf);
  fflush(stderr);
  __atomic_fetch_add(&rt_failures, 1, __ATOMIC_SEQ_CST);
}

/* A setup step failed before "ready": nothing to restore. */
static __attribute__((unused)) void __attribute__((noreturn, format(printf, 1, 2))) rt_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "setup: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (errno %d: %s)\n", errno, strerror(errno));
  va_end(ap);
  exit(90);
}

#define RT_CHECK(cond, ...)          \
  do {                               \
    if (!(cond)) rt_fail(__VA_ARGS__); \
  } while (0)

/* Dies with the test process (before the dump; restore resets this). */
static __attribute__((unused)) void rt_start(int argc, char **argv, int need_args) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) exit(91);
  if (argc < need_args) {
    fprintf(stderr, "usage: %s GOFILE ...\n", argv[0]);
    exit(92);
  }
}

/* Puts a newly made fd at number target (closing the original); dies
 * naming target if making it failed. */
static __attribute__((unused)) void rt_place(int fd, int target) {
  if (fd < 0) rt_die("create for fd %d", target);
  if (fd != target) {
    if (dup2(fd, target) < 0) rt_die("dup2 %d", target);
    close(fd);
  }
}

/* The entries of directory `path` but . and .. (-1 if it cannot be
 * opened); for /proc/self/fd the count includes the DIR's own fd. */
static __attribute__((unused)) int rt_count_entries(const char *path) {
  DIR *d = opendir(path);
  if (!d) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* A pty pair: the master at fd `master`, the slave opened by name at fd
 * `slave` (neither our controlling terminal), "pts NAME" printed; *t is the
 * slave's settings made raw, for the caller to adjust and set. */
static __attribute__((unused)) void rt_open_raw_pty(int master, int slave, struct termios *t) {
  rt_place(posix_openpt(O_RDWR | O_NOCTTY), master);
  if (grantpt(master) != 0 || unlockpt(master) != 0) rt_die("grantpt/unlockpt");
  const char *name = ptsname(master);
  if (!name) rt_die("ptsname");
  printf("pts %s\n", name);
  rt_place(open(name, O_RDWR | O_NOCTTY), slave);
  if (tcgetattr(slave, t) != 0) rt_die("tcgetattr");
  cfmakeraw(t);
}

/* "VmLck:" of /proc/self/status, in kB; -1 if missing. */
static __attribute__((unused)) long rt_vmlck_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmLck: %ld kB", &kb) == 1) break;
  if (f) fclose(f);
  return kb;
}

/* Installs `handler` for `sig` with SA_RESTART and an empty mask. */
static __attribute__((unused)) void rt_on_signal(int sig, void (*handler)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(sig, &sa, NULL) < 0) rt_die("sigaction(%d)", sig);
}

/* A signal handler that counts the ticks of a timer. */
static volatile int rt_timer_ticks;
static __attribute__((unused)) void rt_count_tick(int sig) {
  (void)sig;
  rt_timer_ticks++;
}

static __attribute__((unused)) void rt_ready(void) {
  printf("ready\n");
  fflush(stdout);
}

static __attribute__((unused)) void rt_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* Polls for the go file. */
static __attribute__((unused)) void rt_wait_go(const char *path) {
  while (access(path, F_OK) != 0) rt_sleep_ms(5);
}

/* Until GOFILE exists: whenever DIR/stepN appears for N = *generation + 1,
 * calls advance(N), sets *generation to N and creates DIR/doneN: the
 * handshake of the tests that dump between generations. */
static __attribute__((unused)) void rt_serve_steps(const char *gofile, const char *dir, volatile int *generation,
                                                   void (*advance)(int gen)) {
  char path[4096];
  while (access(gofile, F_OK) != 0) {
    snprintf(path, sizeof path, "%s/step%d", dir, *generation + 1);
    if (access(path, F_OK) == 0) {
      int gen = *generation + 1;
      advance(gen);
      *generation = gen;
      snprintf(path, sizeof path, "%s/done%d", dir, gen);
      int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) rt_die("create %s", path);
      close(fd);
    }
    rt_sleep_ms(5);
  }
}

static __attribute__((unused)) double rt_now(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1 if the VMA holding addr lists `flag` (two letters, as "lo" or "wp") in
 * its smaps VmFlags line, 0 if not, -1 if no VMA holds addr. */
static __attribute__((unused)) int rt_vma_has_flag(const void *addr, const char *flag) {
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[1024];
  int in = 0, found = -1;
  uintptr_t a = (uintptr_t)addr;
  while (f && fgets(line, sizeof line, f)) {
    unsigned long s, e;
    /* A VMA's first line ("start-end perms ..."); other lines have no '-'
     * before their first space. */
    if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      in = s <= a && a < e;
      continue;
    }
    if (in && strncmp(line, "VmFlags:", 8) == 0) {
      char want[8];
      size_t n = (size_t)snprintf(want, sizeof want, " %s", flag);
      found = 0;
      for (char *p = line + 8; (p = strstr(p, want)) != NULL; p++)
        if (p[n] == ' ' || p[n] == '\n') found = 1;
      break;
    }
  }
  if (f) fclose(f);
  return found;
}

/* After the restore: stderr appends to WORKDIR/report.txt, which the test
 * reads (the stderr the program started with may be gone). Exits 93 if it
 * cannot. */
static __attribute__((unused)) void rt_report_to(const char *workdir) {
  char path[4096];
  snprintf(path, sizeof path, "%s/report.txt", workdir);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0 || dup2(fd, 2) < 0) exit(93);
  close(fd);
}

/* Exit status: 0 when every check passed. */
static __attribute__((unused)) int rt_finish(void) {
  if (rt_failures) {
    fprintf(stderr, "%d check(s) failed\n", rt_failures);
    return 1;
  }
  fprintf(stderr, "PASS\n");
  return 0;
}

/* Ends as MODE asks once the checks are done (rt_finish()'s status 0):
 * "exit:N" exits N, "signal:N" dies of signal N (unblocked, its default
 * action), anything else ("run") prints "tick N" to stderr every 20 ms
 * until killed. A failed check exits with `status` instead. */
static __attribute__((unused, noreturn)) void rt_end_as(const char *mode, int status) {
  if (status != 0) exit(status);
  if (strncmp(mode, "exit:", 5) == 0) exit(atoi(mode + 5));
  if (strncmp(mode, "signal:", 7) == 0) {
    int sig = atoi(mode + 7);
    signal(sig, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    raise(sig);
    exit(94);
  }
  for (unsigned long n = 1;; n++) {
    fprintf(stderr, "tick %lu\n", n);
    fflush(stderr);
    rt_sleep_ms(20);
  }
}

#endif
