// Times a command precisely, without the shell's forks of `date` and
// `sleep` in the measurement (bench/README.md, warm_start.sh).
//
//   timed_run [-r RUNS] [-p PIDFILE] -- COMMAND [ARG...]
//
// Runs COMMAND RUNS times (default 10). Without -p each run lasts until
// COMMAND exits; with -p until PIDFILE is written and closed (inotify: the
// instant `imgtool restore --pidfile` says the restored process runs), and
// then the process named in it is killed. This process is a child
// subreaper: whatever COMMAND leaves behind (a detached restored process,
// lazy-pages helpers) is reaped here, so the CPU time counts every process
// of a run. COMMAND's standard output goes to /dev/null. Prints one line:
//   wall_ms median MIN..MAX cpu_ms median MIN..MAX runs N
// and with -p also
//   hwm_kib median MIN..MAX ready_cpu_ms median MIN..MAX
// CLOCK_MONOTONIC from just before fork() to the end; CPU time is user +
// system of every reaped descendant (getrusage RUSAGE_CHILDREN). With -p,
// read at the instant the pid file is complete, before the kill: hwm_kib is
// COMMAND's own peak RSS (VmHWM: imgtool's, not the restored process's),
// ready_cpu_ms the CPU time COMMAND's process tree (with what it reaped)
// and the restored process have used until then. cpu_ms also counts the
// restored process's exit (freeing its memory), which a peer timed until
// its process runs does not pay; speed_bench.sh compares ready_cpu_ms.
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static double children_cpu_ms(void) {
  struct rusage ru;
  getrusage(RUSAGE_CHILDREN, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void summary(const char *name, double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, by_value);
  printf("%s %.2f %.2f..%.2f ", name, v[n / 2], v[0], v[n - 1]);
}

// Reads the pid in PIDFILE; 0 when it is not (yet) complete.
static pid_t read_pidfile(const char *path) {
  char text[32] = {0};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0 || text[n - 1] != '\n') return 0;
  return (pid_t)atoi(text);
}

// Field `key` of /proc/PID/status in KiB (VmHWM), -1 when unreadable.
static double status_kib(pid_t pid, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  double kib = -1;
  size_t len = strlen(key);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, len) == 0 && line[len] == ':') kib = atof(line + len + 1);
  fclose(f);
  return kib;
}

// Fields 4-17 of a /proc stat file (after the ")" that ends the command
// name) into v[0..13]; 0 when unreadable.
static int stat_fields(const char *path, unsigned long long v[14]) {
  char text[1024];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  text[n] = 0;
  char *p = strrchr(text, ')');
  if (!p) return 0;
  char state;
  return sscanf(p + 1, " %c %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &state, &v[0],
                &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12], &v[13]) == 15;
}

// cutime + cstime of PID in ms (fields 16-17 of /proc/PID/stat: its
// reaped children), 0 when unreadable. Clock ticks (10 ms): fine for what
// a restore reaps.
static double reaped_cpu_ms(pid_t pid) {
  char path[64];
  unsigned long long v[14] = {0};
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (!stat_fields(path, v)) return 0;
  return (double)(v[12] + v[13]) * 1e3 / (double)sysconf(_SC_CLK_TCK);
}

// CPU time of every thread of PID in ms, from /proc/PID/task/TID/schedstat
// (nanoseconds on the CPU: /proc/PID/stat's utime and stime count 10 ms
// clock ticks, too coarse for a lazy restore's few ms).
static double threads_cpu_ms(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (!d) return 0;
  double ms = 0;
  unsigned long long live_ticks = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char file[320];
    snprintf(file, sizeof file, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
    FILE *f = fopen(file, "re");
    unsigned long long ns = 0;
    if (f && fscanf(f, "%llu", &ns) == 1) ms += (double)ns / 1e6;
    if (f) fclose(f);
    unsigned long long v[14] = {0};
    snprintf(file, sizeof file, "/proc/%d/task/%s/stat", (int)pid, e->d_name);
    if (stat_fields(file, v)) live_ticks += v[10] + v[11];
  }
  closedir(d);
  // Threads that have exited (a restorer's second filler, decision 248)
  // are in no task directory: their time is the process's utime + stime
  // (fields 14-15, which count them) less its live threads', in ticks.
  unsigned long long v[14] = {0};
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (stat_fields(path, v) && v[10] + v[11] > live_ticks)
    ms += (double)(v[10] + v[11] - live_ticks) * 1e3 / (double)sysconf(_SC_CLK_TCK);
  return ms;
}

// Adds PID and its descendants (through /proc/PID/task/TID/children) to
// seen[] (at most `cap`, no pid twice).
static void collect_tree(pid_t pid, pid_t *seen, int *n, int cap) {
  for (int i = 0; i < *n; i++)
    if (seen[i] == pid) return;
  if (*n >= cap) return;
  seen[(*n)++] = pid;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *d = opendir(path);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char file[320];
    snprintf(file, sizeof file, "/proc/%d/task/%s/children", (int)pid, e->d_name);
    FILE *f = fopen(file, "re");
    int c;
    while (f && fscanf(f, "%d", &c) == 1) collect_tree((pid_t)c, seen, n, cap);
    if (f) fclose(f);
  }
  closedir(d);
}

// The CPU time COMMAND's process tree and the restored process (not
// COMMAND's child with --detach) have used so far: every live process's
// threads, and what each has reaped.
static double tree_cpu_ms(pid_t child, pid_t restored) {
  pid_t seen[256];
  int n = 0;
  collect_tree(child, seen, &n, 256);
  collect_tree(restored, seen, &n, 256);
  double ms = 0;
  for (int i = 0; i < n; i++) ms += threads_cpu_ms(seen[i]) + reaped_cpu_ms(seen[i]);
  return ms;
}

static double last_hwm_kib, last_ready_cpu_ms;

// One run: the wall time in ms, or a negative value when COMMAND failed.
static double run_once(char **argv, const char *pidfile) {
  int watch = -1;
  if (pidfile) {
    unlink(pidfile);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", pidfile);
    watch = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (watch < 0 || inotify_add_watch(watch, dirname(dir), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
      perror("timed_run: inotify");
      exit(1);
    }
  }
  double t0 = now_ms();
  pid_t child = fork();
  if (child < 0) {
    perror("timed_run: fork");
    exit(1);
  }
  if (child == 0) {
    // COMMAND's output is not ours to print: ours is the one result line.
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) dup2(null, STDOUT_FILENO);
    execvp(argv[0], argv);
    perror("timed_run: exec");
    _exit(127);
  }
  double t1 = -1;
  int status = 0;
  if (pidfile) {
    int exited = (int)syscall(SYS_pidfd_open, child, 0);
    for (;;) {
      struct pollfd p[2] = {{watch, POLLIN, 0}, {exited, POLLIN, 0}};
      if (poll(p, 2, -1) < 0 && errno != EINTR) break;
      if (p[0].revents) {
        char buf[4096] __attribute__((aligned(8)));
        while (read(watch, buf, sizeof buf) > 0) {
        }
        pid_t restored = read_pidfile(pidfile);
        if (restored > 0) {
          t1 = now_ms();
          last_hwm_kib = status_kib(child, "VmHWM");
          last_ready_cpu_ms = tree_cpu_ms(child, restored);
          kill(restored, SIGKILL);
          break;
        }
      }
      if (p[1].revents) break;  // COMMAND ended before writing the pid file
    }
    close(exited);
    close(watch);
    waitpid(child, &status, 0);
  } else {
    waitpid(child, &status, 0);
    t1 = now_ms();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) t1 = -1;
  }
  // Everything the run left: detached processes, helpers.
  while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {
  }
  return t1 < 0 ? -1 : t1 - t0;
}

int main(int argc, char **argv) {
  int runs = 10;
  const char *pidfile = NULL;
  int opt;
  while ((opt = getopt(argc, argv, "+r:p:")) != -1) {
    if (opt == 'r') runs = atoi(optarg);
    else if (opt == 'p') pidfile = optarg;
    else return 2;
  }
  if (optind >= argc || runs < 1) {
    fprintf(stderr, "usage: timed_run [-r RUNS] [-p PIDFILE] -- COMMAND [ARG...]\n");
    return 2;
  }
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  double *wall = calloc((size_t)runs, sizeof *wall), *cpu = calloc((size_t)runs, sizeof *cpu);
  double *hwm = calloc((size_t)runs, sizeof *hwm), *ready_cpu = calloc((size_t)runs, sizeof *ready_cpu);
  for (int i = 0; i < runs; i++) {
    double before = children_cpu_ms();
    wall[i] = run_once(argv + optind, pidfile);
    cpu[i] = children_cpu_ms() - before;
    hwm[i] = last_hwm_kib;
    ready_cpu[i] = last_ready_cpu_ms;
    if (wall[i] < 0) {
      fprintf(stderr, "timed_run: %s failed (run %d)\n", argv[optind], i + 1);
      return 1;
    }
  }
  summary("wall_ms", wall, runs);
  summary("cpu_ms", cpu, runs);
  printf("runs %d", runs);
  if (pidfile) {
    printf(" ");
    summary("hwm_kib", hwm, runs);
    summary("ready_cpu_ms", ready_cpu, runs);
  }
  printf("\n");
  return 0;
}
