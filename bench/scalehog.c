/* The scale benchmark's target (bench/scale_bench.sh): a process with many
 * of one thing, then idle until killed.
 *   scalehog maps N      N separate mappings (alternating protections, so
 *                        the kernel cannot merge neighbours)
 *   scalehog threads N   N threads (N-1 besides the main one) asleep
 *   scalehog fds N       N open fds (dups of a file in /tmp)
 *   scalehog sparse G    a G GiB MAP_NORESERVE region with 16 pages touched
 *   scalehog tree N      a tree of N processes (each forks until N exist)
 * Prints "ready" on stdout once set up. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void *sleeper(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

/* Forks a chain-and-fan tree: this process makes children until `left`
 * processes are made, each child taking a share to make below it. */
static void grow(long left, int ready_fd) {
  while (left > 0) {
    long share = (left - 1) / 2;
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      grow(share, ready_fd);
      for (;;) pause();
    }
    left -= 1 + share;
  }
  if (write(ready_fd, "x", 1) != 1) die("write");
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: scalehog maps|threads|fds|sparse|tree N\n");
    return 2;
  }
  long n = atol(argv[2]);
  const char *what = argv[1];
  long page = sysconf(_SC_PAGESIZE);
  if (strcmp(what, "maps") == 0) {
    for (long i = 0; i < n; i++) {
      int prot = (i & 1) ? PROT_READ : PROT_READ | PROT_WRITE;
      char *p = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) die("mmap (see vm.max_map_count)");
      p[0] = (char)i;
      if (mprotect(p, page, prot) < 0) die("mprotect");
    }
  } else if (strcmp(what, "threads") == 0) {
    for (long i = 1; i < n; i++) {
      pthread_t t;
      pthread_attr_t a;
      pthread_attr_init(&a);
      pthread_attr_setstacksize(&a, 64 * 1024);
      if (pthread_create(&t, &a, sleeper, NULL) != 0) die("pthread_create");
    }
  } else if (strcmp(what, "fds") == 0) {
    struct rlimit r = {(rlim_t)n + 64, (rlim_t)n + 64};
    if (setrlimit(RLIMIT_NOFILE, &r) < 0) die("setrlimit");
    char path[] = "/tmp/scalehog-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) die("mkstemp");
    unlink(path);
    /* A named file is reopened by path at restore: keep one linked. */
    char named[64];
    snprintf(named, sizeof named, "/tmp/scalehog-fds-%d", (int)getpid());
    int f = open(named, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (f < 0) die("open");
    close(fd);
    for (long i = 1; i < n; i++)
      if (dup(f) < 0) die("dup");
  } else if (strcmp(what, "sparse") == 0) {
    size_t len = (size_t)n << 30;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    for (int i = 0; i < 16; i++) p[(len / 16) * i] = (char)(i + 1);
  } else if (strcmp(what, "tree") == 0) {
    int fds[2];
    if (pipe(fds) < 0) die("pipe");
    grow(n - 1, fds[1]);
    /* Every process reports once it made its share: n-1 others + us. */
    char c;
    for (long got = 0; got < n; got++)
      if (read(fds[0], &c, 1) != 1) die("read");
    close(fds[0]);
    close(fds[1]);
  } else {
    fprintf(stderr, "scalehog: unknown kind %s\n", what);
    return 2;
  }
  printf("ready\n");
  fflush(stdout);
  for (;;) pause();
}
