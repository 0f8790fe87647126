// Per-process settings that live in the kernel's task, signal or mm
// structures and that only /proc files or the process itself report
// (issue 17): oom_score_adj, loginuid, child subreaper, THP disable,
// membarrier registrations, and the cgroups it is in.
#pragma once

#include <string>
#include <sys/types.h>

#include <ckpt/img/expected.h>
#include <ckpt/img/format.h>

namespace ckpt::writer {

class Injector;

struct ProcessSettings {
  img::i32 oom_score_adj = 0;
  img::u32 loginuid = 0xffffffffu;  ///< unset
  img::u32 settings = 0;            ///< img::TaskSettings
  img::u32 membarrier = 0;          ///< MEMBARRIER_CMD_GET_REGISTRATIONS bits
  std::string cgroup;               ///< /proc/PID/cgroup
  std::string cgroup_settings;      ///< img::cgroup_settings_text of its cgroups
};

/// Reads them from /proc and, through `inj` (a borrowed thread of pid),
/// from prctl and membarrier.
img::Expected<ProcessSettings> capture_process_settings(pid_t pid, Injector &inj);

}  // namespace ckpt::writer
