#include "frozen_phases.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <unistd.h>

namespace ckpt::writer {

namespace {

FrozenPhases *g_active = nullptr;

double ms_of(clockid_t clock) {
  timespec ts{};
  if (clock_gettime(clock, &ts) < 0) return 0;
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

bool tracing_times() {
  static const bool on = [] {
    const char *v = std::getenv("CKPT_TRACE_TIMES");
    return v && std::strcmp(v, "1") == 0;
  }();
  return on;
}

}  // namespace

FrozenPhases *FrozenPhases::active() { return g_active; }
void FrozenPhases::set_active(FrozenPhases *p) { g_active = p; }

void mark_frozen_phase(const char *what) {
  if (g_active) g_active->mark(what);
}

double FrozenPhases::tree_cpu_ms() const {
  double sum = 0;
  for (pid_t pid : pids_) {
    clockid_t clock;
    if (clock_getcpuclockid(pid, &clock) == 0) sum += ms_of(clock);
  }
  return sum;
}

void FrozenPhases::open() {
  tracing_ = tracing_times();
  steps_.clear();
  open_ms_ = ms_of(CLOCK_MONOTONIC);
  if (tracing_) open_own_ms_ = ms_of(CLOCK_PROCESS_CPUTIME_ID);
}

void FrozenPhases::add_process(pid_t pid) {
  if (!tracing_) return;
  // Its CPU time so far counts as before the window: a later process's
  // share starts from here.
  pids_.push_back(pid);
  clockid_t clock;
  if (clock_getcpuclockid(pid, &clock) == 0) open_tree_ms_ += ms_of(clock);
}

void FrozenPhases::mark(const char *what) {
  if (!tracing_) return;
  steps_.push_back({what, ms_of(CLOCK_MONOTONIC) - open_ms_, ms_of(CLOCK_PROCESS_CPUTIME_ID) - open_own_ms_,
                    tree_cpu_ms() - open_tree_ms_});
}

double FrozenPhases::elapsed() const { return (ms_of(CLOCK_MONOTONIC) - open_ms_) / 1e3; }

void FrozenPhases::print() {
  if (!tracing_) return;
  double wall = 0, own = 0, tree = 0;
  for (const Step &s : steps_) {
    char line[256];
    int n = std::snprintf(line, sizeof line, "ckpt-frozen: %9.3f ms  %-34s (wall +%.3f, cpu imgtool +%.3f, tree +%.3f)\n",
                          s.wall_ms, s.what.c_str(), s.wall_ms - wall, s.own_cpu_ms - own, s.tree_cpu_ms - tree);
    if (n > 0) (void)!write(STDERR_FILENO, line, size_t(n) < sizeof line ? size_t(n) : sizeof line - 1);
    wall = s.wall_ms;
    own = s.own_cpu_ms;
    tree = s.tree_cpu_ms;
  }
  steps_.clear();
}

}  // namespace ckpt::writer
