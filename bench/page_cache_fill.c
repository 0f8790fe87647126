// page_cache_fill: the ways a dump could fill its image file in the page
// cache, measured alone (issue 12; bench/README.md "Eighth pass").
//
//   page_cache_fill MODE [-t THREADS] [-s GIB] [-c CHUNK_KIB] [-f] [-a hp|rand] [-g] [-p GIB]
//
// MODE (1 GiB of non-zero bytes from an anonymous buffer into a new file
// beside the working directory's "page_cache_fill.out", deleted after):
//   pwrite   THREADS threads pwrite alternate CHUNK_KIB pieces (the dump's
//            writer: one thread, 256 KiB)
//   readwrite  pread of /proc/PID/mem of a forked copy into a 2 MiB buffer,
//            then pwrite of it in CHUNK_KIB pieces (the dump's two stages
//            in one thread each when -t 2)
//   memcpy   the file sized (ftruncate, or fallocate with -f), mapped
//            MAP_SHARED, THREADS threads memcpy alternate 2 MiB slices in
//   populate the same, each slice made present first (MADV_POPULATE_WRITE)
//   mapread  the same, each slice filled by pread of /proc/PID/mem of a
//            forked copy straight into the mapping (one copy)
// -a hp|rand: MADV_HUGEPAGE or MADV_RANDOM on the mapping. -g prints the
// writing thread's CPU per GiB (pwrite, one thread). -p N touches and frees
// N GiB just before the timed part (memory the host has just given back).
// Prints one line: wall and CPU (user + system of the process) seconds of
// the timed part (open to close), after checking the file's bytes.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static const char *out = "page_cache_fill.out";
static const char *mode = "";
static size_t total = 1ul << 30, chunk = 256ul << 10;
static const size_t slice = 2ul << 20;
static unsigned char *src, *map;
static int fd = -1, mem = -1, threads = 1, per_gib;

static void die(const char *what) {
  perror(what);
  unlink(out);
  exit(1);
}

static double seconds(clockid_t c) {
  struct timespec t;
  clock_gettime(c, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void read_mem(unsigned char *into, size_t len, size_t off) {
  for (size_t k = 0; k < len;) {
    ssize_t n = pread(mem, into + k, len - k, (off_t)(unsigned long)(src + off + k));
    if (n <= 0) die("pread /proc/PID/mem");
    k += (size_t)n;
  }
}

static void write_file(const unsigned char *from, size_t len, size_t off) {
  for (size_t k = 0; k < len; k += chunk)
    if (pwrite(fd, from + k, chunk, (off_t)(off + k)) != (ssize_t)chunk) die("pwrite");
}

static void *work(void *arg) {
  long id = (long)arg;
  size_t step = !strcmp(mode, "pwrite") ? chunk : slice;
  unsigned char *buffer = NULL;
  if (!strcmp(mode, "readwrite")) {
    buffer = mmap(NULL, slice, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffer == MAP_FAILED) die("mmap buffer");
    memset(buffer, 1, slice);
  }
  double last = 0;
  for (size_t off = (size_t)id * step; off < total; off += (size_t)threads * step) {
    if (!strcmp(mode, "pwrite")) {
      write_file(src + off, step, off);
      if (per_gib && ((off + step) & ((1ul << 30) - 1)) == 0) {
        double now = seconds(CLOCK_THREAD_CPUTIME_ID);
        fprintf(stderr, "  GiB %zu: writing thread's CPU %.3f s\n", (off + step) >> 30, now - last);
        last = now;
      }
    } else if (!strcmp(mode, "readwrite")) {
      read_mem(buffer, step, off);
      write_file(buffer, step, off);
    } else if (!strcmp(mode, "memcpy")) {
      memcpy(map + off, src + off, step);
    } else if (!strcmp(mode, "populate")) {
      if (madvise(map + off, step, MADV_POPULATE_WRITE)) die("MADV_POPULATE_WRITE");
      memcpy(map + off, src + off, step);
    } else {
      read_mem(map + off, step, off);
    }
  }
  if (buffer) munmap(buffer, slice);
  return NULL;
}

int main(int argc, char **argv) {
  int falloc = 0, opt;
  const char *advice = "";
  size_t pretouch = 0;
  if (argc < 2) {
    fprintf(stderr, "usage: page_cache_fill pwrite|readwrite|memcpy|populate|mapread [-t N] [-s GIB] [-c KIB] [-f] [-a hp|rand] [-g] [-p GIB]\n");
    return 2;
  }
  mode = argv[1];
  optind = 2;
  while ((opt = getopt(argc, argv, "t:s:c:fa:gp:")) != -1) {
    switch (opt) {
      case 't': threads = atoi(optarg); break;
      case 's': total = strtoul(optarg, NULL, 10) << 30; break;
      case 'c': chunk = strtoul(optarg, NULL, 10) << 10; break;
      case 'f': falloc = 1; break;
      case 'a': advice = optarg; break;
      case 'g': per_gib = 1; break;
      case 'p': pretouch = strtoul(optarg, NULL, 10) << 30; break;
      default: return 2;
    }
  }
  int mapped = strcmp(mode, "pwrite") && strcmp(mode, "readwrite");
  if (threads < 1 || threads > 8 || !total || !chunk || slice % chunk || total % slice) {
    fprintf(stderr, "page_cache_fill: 1-8 threads, a size in GiB, a chunk dividing 2 MiB\n");
    return 2;
  }
  src = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (src == MAP_FAILED) die("mmap source");
  for (size_t i = 0; i < total; i += 8) *(unsigned long *)(src + i) = i * 0x9e3779b97f4a7c15ul + 1;
  pid_t copy = 0;
  if (!strcmp(mode, "readwrite") || !strcmp(mode, "mapread")) {
    copy = fork();  // the dump reads a forked copy too (snapshot mode)
    if (copy < 0) die("fork");
    if (!copy) {
      // Ends with this process however it ends (die() exits without
      // waiting): pid 1 here does not reap, and a paused copy would stay.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() == 1) _exit(0);
      pause();
      _exit(0);
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", copy);
    if ((mem = open(path, O_RDONLY)) < 0) die(path);
  }
  if (pretouch) {
    unsigned char *p = mmap(NULL, pretouch, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap pretouch");
    for (size_t i = 0; i < pretouch; i += 4096) p[i] = 1;
    munmap(p, pretouch);
  }
  unlink(out);
  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  double t0 = seconds(CLOCK_MONOTONIC);
  if ((fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) die(out);
  if (falloc && fallocate(fd, 0, 0, (off_t)total)) die("fallocate");
  if (mapped) {
    if (!falloc && ftruncate(fd, (off_t)total)) die("ftruncate");
    map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) die("mmap file");
    if (!strcmp(advice, "hp")) madvise(map, total, MADV_HUGEPAGE);
    if (!strcmp(advice, "rand")) madvise(map, total, MADV_RANDOM);
  }
  pthread_t th[8];
  for (long i = 0; i < threads; i++)
    if (pthread_create(&th[i], NULL, work, (void *)i)) die("pthread_create");
  for (long i = 0; i < threads; i++) pthread_join(th[i], NULL);
  if (map) munmap(map, total);
  close(fd);
  double t1 = seconds(CLOCK_MONOTONIC);
  getrusage(RUSAGE_SELF, &r1);
  double cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
               (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
  int check = open(out, O_RDONLY | O_CLOEXEC);
  unsigned char *got = check < 0 ? MAP_FAILED : mmap(NULL, total, PROT_READ, MAP_SHARED, check, 0);
  if (got == MAP_FAILED || memcmp(got, src, total)) {
    fprintf(stderr, "page_cache_fill: the file does not hold the bytes written\n");
    unlink(out);
    return 1;
  }
  unlink(out);
  if (copy) kill(copy, SIGKILL), waitpid(copy, NULL, 0);
  printf("%s -t %d -s %zu -c %zu%s%s%s: wall %.3f s, cpu %.3f s\n", mode, threads, total >> 30, chunk >> 10,
         falloc ? " -f" : "", *advice ? " -a " : "", advice, t1 - t0, cpu);
  return 0;
}
