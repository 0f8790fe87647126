// The pre-arm: a first dump's dirty tracker made before the freeze
// (issue #11, DECISIONS 260).
//
// A process without a tracker used to get one inside the freeze: the
// injected syscalls and one PAGEMAP_SCAN write-protecting every page (about
// 3.5 ms per 256 MiB of 4 KiB pages), so a first dump's frozen window was
// longer than a later one's by that much. Now each such process of the
// tree is stopped alone and briefly before the freeze, given its tracker
// (the syscalls, the epoch, UFFDIO_REGISTER over its private writable
// mappings) and let go; its pages are then write-protected from outside
// while it runs. The freeze finds a tracker whose epoch names this process
// and this tracker, and resets it as a later dump does (continue_tracking:
// only pages written since the pre-arm, and mappings new to it).
//
// Why every write after the snapshot instant is seen by the next dump: the
// freeze's continue_tracking write-protects, inside the window, every page
// of every trackable mapping that counts as written: one written since the
// outside walk passed it, one the walk never reached (no uffd-wp bit), one
// of a mapping registered only then. So at the instant every tracked page
// is protected, as after an arm inside the freeze, and a later write
// clears that. The pre-arm's own walk only makes that reset short.
//
// The epoch written at the pre-arm names this process and tracker with an
// image id of zeros: no image has it, so no earlier image's --parent trusts
// the tracker (nor does its new inode match one), and the freeze's
// tracker_continues accepts it (it checks pid, start time and inode). The
// freeze writes this dump's id into it before the reset.
#pragma once

#include <map>
#include <set>
#include <string>
#include <sys/types.h>

#include <ckpt/img/expected.h>

#include "procfs.h"

namespace ckpt::writer {

class DumpGuard;

struct PreArmed {
  std::set<pid_t> pids;       ///< processes given a tracker before the freeze
  std::set<img::u64> inos;    ///< their trackers' inodes (a child forked since holds one of them)
  double stopped_seconds = 0; ///< the longest stop of one of them
};

/// Pre-arms every process of the tree under `root` that holds no tracker
/// (nor a userfaultfd or epoch memfd at all: those the freeze handles as
/// before), each journalled with `guard` first, so a failure or imgtool's
/// death from here on closes the new trackers. A process that cannot be
/// stopped, or cannot get a tracker (seccomp, no [vdso], RLIMIT_NOFILE,
/// EPERM), is left as it was (the freeze tries again, with its note).
/// Errors: only what leaves a process in doubt (an injection that failed).
/// `smaps`: the tree's smaps read before the freeze (smaps_before.h), used
/// where a process's mappings are still those; empty: read here.
img::Expected<PreArmed> prearm_trackers(pid_t root, DumpGuard &guard,
                                        const std::map<pid_t, std::vector<MapEntry>> &smaps);

}  // namespace ckpt::writer
