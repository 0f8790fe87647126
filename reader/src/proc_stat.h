// The head of /proc/PID/stat that restore asks about: a task's state letter
// and its flags (include/linux/sched.h PF_*). The reader does not link the
// writer's full procfs parser (the launcher stays small).
#pragma once

#include <optional>
#include <sys/types.h>

namespace ckpt::reader {

struct StatHead {
  char state = '?';         ///< field 3: R, S, D, T, t, Z, X, ...
  unsigned long flags = 0;  ///< field 9
};

/// Fields 3 and 9 of /proc/PID/stat; nothing when it cannot be read
/// (no such process) or parsed.
std::optional<StatHead> read_stat_head(pid_t pid);

}  // namespace ckpt::reader
