// The cgroup v2 that snapshot copies are born frozen in, and the guardian
// process that cleans up after imgtool if it dies mid-snapshot.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>

namespace ckpt::writer {

/// Creates <cgroup2 mount>/ckpt-snapshot-<our pid> with cgroup.freeze=1.
/// Fails (one line) where there is no writable cgroup v2, or where a target
/// lives in another mount or pid namespace than we do.
img::Expected<std::string> make_frozen_cgroup(const std::vector<pid_t> &targets);

/// Kills whatever is left in the cgroup and removes it (best effort).
void remove_cgroup(const std::string &cgroup);

struct Guardian {
  pid_t pid = 0;
  int pipe = -1;  ///< write end: one byte 'D' means all is clean
};

/// Forks the guardian. If the pipe closes without 'D' (imgtool died), it
/// kills every copy in `cgroup`, reaps each inside its parent (the
/// target, frozen for the moment) and removes the cgroup.
img::Expected<Guardian> start_guardian(const std::string &cgroup);

}  // namespace ckpt::writer
