// CKPT_TRACE_TIMES=1 in the environment of `imgtool restore` or `./FILE`:
// each phase of a restore prints one line to stderr, "ckpt-times: MS PHASE",
// MS counted from the restore's start on CLOCK_MONOTONIC
// (docs/design/warm-start-time.md). The restoring child and the lazy-pages
// helper are forks and share the start, so their lines line up with the
// parent's. Off, a phase costs one predictable branch.
#pragma once

namespace ckpt::reader {

/// Where the lines go (stderr unless set: the lazy-pages helper, whose
/// stderr is /dev/null, keeps a copy of imgtool's).
void set_phase_trace_fd(int fd);
/// Whether CKPT_TRACE_TIMES=1 (read once).
bool tracing_times();
/// Starts the clock (the first call does; later calls are no-ops).
void start_phase_clock();
/// One line "ckpt-times: MS WHAT" on stderr when tracing.
void trace_phase(const char *what);
/// The same with a printf-style detail.
void trace_phasef(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/// The CPU time process pid has used so far, in ms (its
/// /proc/PID/schedstat), or -1: the restorer cannot trace itself.
double process_cpu_ms(int pid);

}  // namespace ckpt::reader
