// The cgroup v2 that snapshot copies are born frozen in.
#pragma once

#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>

namespace ckpt::writer {

/// Creates <cgroup2 mount>/ckpt-snapshot-<our pid> with cgroup.freeze=1.
/// Fails (one line) where there is no writable cgroup v2, or where a target
/// lives in another mount or pid namespace than we do.
/// `about_to_make` is told the path before the mkdir (the dump guard's
/// journal: a dumper killed right after the mkdir leaves it to the guard).
img::Expected<std::string> make_frozen_cgroup(const std::vector<pid_t> &targets,
                                              const std::function<void(const std::string &)> &about_to_make = {});

/// Kills whatever is left in the cgroup and removes it (best effort).
void remove_cgroup(const std::string &cgroup);

}  // namespace ckpt::writer
