// The handover: the restorer has set everything up and reported success;
// imgtool takes each thread from the restorer to the program's first
// instruction under ptrace, then removes the restorer from the process.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/format.h>
#include <ckpt/img/model.h>

#include "../restorer/abi.h"

namespace ckpt::reader {

struct Handover {
  pid_t pid = 0;
  std::vector<pid_t> tids;        ///< every thread, the leader first
  img::u64 region_start = 0, region_end = 0;  ///< the restorer region
  img::u64 threads_go = 0;        ///< address of the restorer's release word
  img::u64 syscall_insn = 0;      ///< a `syscall` instruction in the process's [vdso], or 0
  bool stopped = false;           ///< stop the process again (it was dumped stopped)
};

/// The handover of the process the restorer reported from `where`.
Handover handover_of(const img::CkptView &v, pid_t pid, const rs_handover &where);

/// Attaches to every thread (parked in the restorer), releases them,
/// follows each through its rt_sigreturn (the thread then holds exactly the
/// image's registers, mask and stack, at the program's instruction), unmaps
/// the restorer region from the leader with an injected munmap, takes the
/// job-control stop of a stopped image, and detaches. No instruction of the
/// program runs before the detach. A failure kills the process: nothing of
/// it has run. `warning` gets a line when the region could not be unmapped
/// (the process runs all the same, with the region left behind).
img::Status hand_over(const Handover &h, std::string *warning);

/// hand_over for the processes of a tree, as one step: every process is
/// taken to its first instruction before any is let go, so that no program
/// runs before the whole tree is in place. A failure kills them all.
img::Status hand_over_all(const std::vector<Handover> &processes, std::string *warning);

}  // namespace ckpt::reader
