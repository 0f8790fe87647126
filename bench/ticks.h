// Layout of the tick file shared by memhog --ticks (the writer) and tickgap
// (the reader). memhog maps the file MAP_SHARED; a helper thread wakes every
// millisecond on CLOCK_MONOTONIC and keeps the largest gap between two
// consecutive wake-ups since the last reset. While the process is stopped
// (ptrace, SIGSTOP, a kernel freeze) the thread cannot run, so the gap that
// spans the stop is how long the process was frozen, give or take the
// scheduling noise of the machine (a few ms here).
#pragma once
#include <stdint.h>

#define TICKS_MAGIC 0x736b6369745f6d6dULL  // "mm_ticks"
#define TICKS_PERIOD_NS 1000000LL           // 1 ms
#define TICKS_FILE_SIZE 4096

struct ticks {
  uint64_t magic;
  uint64_t seq;         // wake-ups so far (written by memhog)
  uint64_t last_ns;     // CLOCK_MONOTONIC of the last wake-up (memhog)
  uint64_t max_gap_ns;  // largest gap between wake-ups since the reset (memhog)
  uint64_t reset_req;   // bumped by the reader to ask for a reset
  uint64_t reset_ack;   // set to reset_req by memhog once max_gap_ns is cleared
};
