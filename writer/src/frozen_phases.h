// Where a dump's frozen window goes: each step between the first stop
// request and the release is marked, with the wall clock, imgtool's CPU
// time and the tree's (the injected clone3 runs in the target, so its
// page-table copy is the target's CPU time, not ours). `dump --stats`
// reports the frozen total; CKPT_TRACE_TIMES=1 in imgtool's environment
// prints one line per step to stderr, "ckpt-frozen: MS WHAT (wall +MS, cpu
// imgtool +MS, tree +MS)", after the release (printing inside the window
// would lengthen it).
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

namespace ckpt::writer {

class FrozenPhases {
 public:
  /// The window opens now.
  void open();
  /// A process of the tree, whose CPU clock counts as the tree's from now
  /// (when tracing).
  void add_process(pid_t pid);
  /// Ends the step running since the previous mark.
  void mark(const char *what);
  /// Seconds since open().
  double elapsed() const;
  /// The lines, when tracing; printed once.
  void print();

  /// The window of the dump running now (one per imgtool), or null.
  static FrozenPhases *active();
  static void set_active(FrozenPhases *p);

 private:
  struct Step {
    std::string what;
    double wall_ms, own_cpu_ms, tree_cpu_ms;
  };
  double tree_cpu_ms() const;
  bool tracing_ = false;
  double open_ms_ = 0, open_own_ms_ = 0, open_tree_ms_ = 0;
  std::vector<pid_t> pids_;
  std::vector<Step> steps_;
};

/// FrozenPhases::active()->mark(what), if a window is open.
void mark_frozen_phase(const char *what);

}  // namespace ckpt::writer
