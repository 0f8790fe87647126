// A benchmark target: touches N MiB of anonymous memory with non-zero
// bytes, says "ready" on stdout, then sleeps until killed.
//
//   memhog [N] [--ticks FILE]
//
// With --ticks FILE it also runs a helper thread that wakes every 1 ms of
// CLOCK_MONOTONIC and records in FILE (mapped MAP_SHARED, layout in ticks.h)
// the largest gap between consecutive wake-ups; bench/tickgap resets and
// reads it from outside. That gap is how long the process was stopped.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ticks.h"

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void *ticker(void *arg) {
  struct ticks *t = arg;
  uint64_t last = now_ns();
  uint64_t next = last;
  for (;;) {
    next += TICKS_PERIOD_NS;
    struct timespec ts = {(time_t)(next / 1000000000ULL), (long)(next % 1000000000ULL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
    uint64_t now = now_ns();
    uint64_t gap = now - last;
    uint64_t req = __atomic_load_n(&t->reset_req, __ATOMIC_ACQUIRE);
    if (req != __atomic_load_n(&t->reset_ack, __ATOMIC_RELAXED)) {
      __atomic_store_n(&t->max_gap_ns, 0, __ATOMIC_RELAXED);
      __atomic_store_n(&t->reset_ack, req, __ATOMIC_RELEASE);
    } else if (gap > __atomic_load_n(&t->max_gap_ns, __ATOMIC_RELAXED)) {
      __atomic_store_n(&t->max_gap_ns, gap, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&t->last_ns, now, __ATOMIC_RELAXED);
    __atomic_fetch_add(&t->seq, 1, __ATOMIC_RELEASE);
    last = now;
    if (next < now) next = now;  // after a stop: no burst of catch-up ticks
  }
  return NULL;
}

static int start_ticker(const char *path) {
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || ftruncate(fd, TICKS_FILE_SIZE) < 0) return -1;
  struct ticks *t = mmap(NULL, TICKS_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (t == MAP_FAILED) return -1;
  __atomic_store_n(&t->magic, TICKS_MAGIC, __ATOMIC_RELEASE);
  pthread_t th;
  return pthread_create(&th, NULL, ticker, t) == 0 ? 0 : -1;
}

static volatile sig_atomic_t fork_asked;
static void on_usr2(int sig) { (void)sig; fork_asked = 1; }

int main(int argc, char **argv) {
  size_t mib = 256;
  const char *ticks_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--ticks") == 0 && i + 1 < argc)
      ticks_path = argv[++i];
    else
      mib = strtoul(argv[i], NULL, 10);
  }
  size_t len = mib << 20;
  unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  for (size_t i = 0; i < len; i += 4096) memset(p + i, (int)((i >> 12) % 251) + 1, 4096);
  // SIGUSR2 is for the main thread (below): the ticker is born blocking it.
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, NULL);
  if (ticks_path && start_ticker(ticks_path) < 0) {
    perror("memhog: --ticks");
    return 1;
  }
  pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
  // SIGUSR2: time one fork() of this very process (the child exits at
  // once) and write the seconds to FILE.fork (--ticks FILE): the yardstick
  // for a snapshot-mode dump's frozen time.
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr2;
  sigaction(SIGUSR2, &sa, NULL);
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    pause();
    if (!fork_asked || !ticks_path) continue;
    fork_asked = 0;
    struct timespec t0, t1, c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    pid_t child = fork();
    if (child == 0) _exit(0);
    // The CPU the page-table copy took (charged to this thread): a ratio
    // against it holds on a loaded machine, where wall clock swings.
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (child > 0) waitpid(child, NULL, 0);
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s.fork", ticks_path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    // FILE.fork_cpu first: FILE.fork appearing says both are there.
    char cpu_path[4200];
    snprintf(cpu_path, sizeof cpu_path, "%s_cpu", path);
    FILE *c = fopen(tmp, "w");
    if (c) {
      fprintf(c, "%.6f\n", (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9);
      fclose(c);
      rename(tmp, cpu_path);
    }
    FILE *f = fopen(tmp, "w");
    if (!f) continue;
    fprintf(f, "%.6f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    fclose(f);
    rename(tmp, path);
  }
}
