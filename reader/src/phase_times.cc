#include "phase_times.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <unistd.h>

namespace ckpt::reader {

namespace {

timespec g_start{};
bool g_started = false;
int g_fd = STDERR_FILENO;

double ms_since_start() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return double(now.tv_sec - g_start.tv_sec) * 1e3 + double(now.tv_nsec - g_start.tv_nsec) / 1e6;
}

}  // namespace

bool tracing_times() {
  static const bool on = [] {
    const char *v = std::getenv("CKPT_TRACE_TIMES");
    return v && std::strcmp(v, "1") == 0;
  }();
  return on;
}

void set_phase_trace_fd(int fd) { g_fd = fd; }

void start_phase_clock() {
  if (g_started) return;
  clock_gettime(CLOCK_MONOTONIC, &g_start);
  g_started = true;
}

void trace_phase(const char *what) {
  if (!tracing_times()) return;
  start_phase_clock();
  // One write per line, so that the lines of the child and the helper do
  // not interleave within a line.
  // With this process's own CPU time so far (a forked child's starts at
  // zero): on a loaded machine the wall clock mostly measures the wait for
  // a CPU, the CPU time what a phase costs.
  timespec cpu{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  double cpu_ms = double(cpu.tv_sec) * 1e3 + double(cpu.tv_nsec) / 1e6;
  char line[256];
  int n = std::snprintf(line, sizeof line, "ckpt-times: %8.3f ms  cpu %7.3f ms  [%d] %s\n", ms_since_start(), cpu_ms,
                        int(getpid()), what);
  if (n > 0) (void)!write(g_fd, line, size_t(n) < sizeof line ? size_t(n) : sizeof line - 1);
}

double process_cpu_ms(int pid) {
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%d/schedstat", pid);
  FILE *f = std::fopen(path, "re");
  if (!f) return -1;
  unsigned long long ns = 0;
  int got = std::fscanf(f, "%llu", &ns);
  std::fclose(f);
  return got == 1 ? double(ns) / 1e6 : -1;
}

void trace_phasef(const char *fmt, ...) {
  if (!tracing_times()) return;
  char what[200];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  trace_phase(what);
}

}  // namespace ckpt::reader
