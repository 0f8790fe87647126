/* Restore test for snapshot mode (the default dump of a running process of
 * 8 MiB or more): two threads keep moving amounts between counters on
 * PAGES pages (32 MiB) under a lock, so that a torn image (pages read at
 * different instants) breaks the invariants: the values sum to zero and
 * the touches to twice the operations.
 * Before the go file appears, WORKDIR/check makes the main thread check
 * that it saw nothing of a dump: no SIGCHLD, no child for waitpid(-1) or
 * waitid(P_ALL, __WALL), no /proc/self/task/N/children entry, the same
 * number of fds; and the invariants. It writes "ok" or the failures to
 * WORKDIR/checked and goes on waiting. After go (the restored process)
 * the invariants must hold and the threads still move amounts.
 *   usage: restore_snapshot GOFILE WORKDIR */
#include "rt_prog.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGES 8192
struct page {
  int64_t value;
  uint64_t touches;
  char fill[4096 - 16];
};
static struct page *pages;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile uint64_t ops;
static volatile int sigchld_count;

static void on_sigchld(int sig) { (void)sig; sigchld_count++; }

static void *mover(void *arg) {
  uint64_t x = (uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
  for (unsigned long n = 1;; n++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t i = x % PAGES, j = (x >> 20) % PAGES;
    int64_t k = (int64_t)(x >> 40) % 1000;
    pthread_mutex_lock(&lock);
    pages[i].value += k;
    pages[j].value -= k;
    pages[i].touches++;
    pages[j].touches++;
    ops++;
    pthread_mutex_unlock(&lock);
    if (n % 256 == 0) rt_sleep_ms(0);
  }
  return NULL;
}

/* The invariants, under the lock; a message on failure, else NULL. */
static const char *check_invariants(uint64_t *ops_seen) {
  static char why[200];
  pthread_mutex_lock(&lock);
  int64_t sum = 0;
  uint64_t touches = 0;
  for (size_t i = 0; i < PAGES; i++) sum += pages[i].value, touches += pages[i].touches;
  uint64_t o = ops;
  pthread_mutex_unlock(&lock);
  if (ops_seen) *ops_seen = o;
  if (sum == 0 && touches == 2 * o) return NULL;
  snprintf(why, sizeof why, "torn memory: values sum to %lld, touches %llu for %llu operations", (long long)sum,
           (unsigned long long)touches, (unsigned long long)o);
  return why;
}

static int count_fds(void) { return rt_count_entries("/proc/self/fd") - 1; /* the DIR's own */ }

/* Every /proc/self/task/N/children line, concatenated. */
static void read_children(char *out, size_t size) {
  out[0] = 0;
  DIR *d = opendir("/proc/self/task");
  for (struct dirent *e; d && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    char path[300], buf[200] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
    FILE *f = fopen(path, "re");
    if (f) {
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      buf[n] = 0;
      fclose(f);
    }
    strncat(out, buf, size - strlen(out) - 1);
  }
  if (d) closedir(d);
}

static void self_check(const char *workdir, int fds_before) {
  char report[1000] = "";
  char children[400];
  if (sigchld_count) snprintf(report + strlen(report), sizeof report - strlen(report), "SIGCHLD delivered %d times; ", sigchld_count);
  errno = 0;
  pid_t w = waitpid(-1, NULL, WNOHANG);
  if (!(w < 0 && errno == ECHILD)) snprintf(report + strlen(report), sizeof report - strlen(report), "waitpid(-1) says %d (%s); ", w, strerror(errno));
  siginfo_t si;
  memset(&si, 0, sizeof si);
  errno = 0;
  int r = waitid(P_ALL, 0, &si, WEXITED | WSTOPPED | WNOHANG | __WALL);
  if (!(r < 0 && errno == ECHILD))
    snprintf(report + strlen(report), sizeof report - strlen(report), "waitid(P_ALL, __WALL) says %d, pid %d (%s); ", r, si.si_pid, strerror(errno));
  read_children(children, sizeof children);
  if (children[0]) snprintf(report + strlen(report), sizeof report - strlen(report), "children: %s; ", children);
  int fds = count_fds();
  if (fds != fds_before) snprintf(report + strlen(report), sizeof report - strlen(report), "%d fds, %d before; ", fds, fds_before);
  const char *torn = check_invariants(NULL);
  if (torn) snprintf(report + strlen(report), 250, "%s; ", torn);
  char path[4096], tmp[4096];
  snprintf(path, sizeof path, "%s/checked", workdir);
  snprintf(tmp, sizeof tmp, "%s/checked.tmp", workdir);
  FILE *f = fopen(tmp, "we");
  if (!f) rt_die("cannot write %s", tmp);
  fprintf(f, "%s\n", report[0] ? report : "ok");
  fclose(f);
  rename(tmp, path);
}

int main(int argc, char **argv) {
  rt_start(argc, argv, 3);
  rt_on_signal(SIGCHLD, on_sigchld);
  pages = mmap(NULL, sizeof(struct page) * PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pages == MAP_FAILED) rt_die("mmap");
  for (size_t i = 0; i < PAGES; i++) memset(pages[i].fill, (int)(i % 251) + 1, sizeof pages[i].fill);
  int fds_before = count_fds();
  pthread_t t[2];
  for (long i = 0; i < 2; i++)
    if (pthread_create(&t[i], NULL, mover, (void *)(i + 1)) != 0) rt_die("pthread_create");
  while (ops < 10000) rt_sleep_ms(1);
  printf("pid %d\n", getpid());
  rt_ready();
  char check[4096];
  snprintf(check, sizeof check, "%s/check", argv[2]);
  while (access(argv[1], F_OK) != 0) {
    if (access(check, F_OK) == 0) {
      self_check(argv[2], fds_before);
      unlink(check);
    }
    rt_sleep_ms(5);
  }
  uint64_t o0 = 0, o1 = 0;
  const char *torn = check_invariants(&o0);
  RT_CHECK(!torn, "after restore: %s", torn);
  double until = rt_now(CLOCK_MONOTONIC) + 10;
  while (o1 < o0 + 10000 && rt_now(CLOCK_MONOTONIC) < until) {
    rt_sleep_ms(5);
    torn = check_invariants(&o1);
    RT_CHECK(!torn, "after restore, later: %s", torn);
    if (torn) break;
  }
  RT_CHECK(o1 >= o0 + 10000, "the threads stopped moving amounts (%llu operations)", (unsigned long long)o1);
  return rt_finish();
}
