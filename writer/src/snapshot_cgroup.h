// The cgroup v2 that snapshot copies are born frozen in.
#pragma once

#include <functional>
#include <string>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>

namespace ckpt::writer {

/// The first cgroup2 mount of our mount namespace (a hybrid hierarchy has
/// it at /sys/fs/cgroup/unified), or "" when there is none.
std::string cgroup2_mount();

/// The name of the snapshot cgroup of the imgtool with this pid in the pid
/// namespace of this inode (/proc/PID/ns/pid): "ckpt-snapshot-INODE-PID".
std::string snapshot_cgroup_name(ino_t pid_namespace_inode, pid_t pid);

/// Creates <cgroup2 mount>/<snapshot_cgroup_name(our pid namespace, our pid)>
/// with cgroup.freeze=1.
/// Fails (one line) where there is no writable cgroup v2, or where a target
/// lives in another mount or pid namespace than we do.
/// `about_to_make` is told the path before the mkdir (the dump guard's
/// journal: a dumper killed right after the mkdir leaves it to the guard).
/// `premade`: the cgroup made_before_freeze() made (not made again).
img::Expected<std::string> make_frozen_cgroup(const std::vector<pid_t> &targets,
                                              const std::function<void(const std::string &)> &about_to_make = {},
                                              std::string premade = {});

/// The same cgroup made before the freeze (its mkdir took 0.3-9 ms of the
/// frozen window), removed again unless taken by a snapshot.
class PreparedCgroup {
 public:
  PreparedCgroup() = default;
  /// Makes it (journalled through about_to_make first); a failure leaves it
  /// unmade, and make_frozen_cgroup tries again inside the freeze.
  void make(const std::function<void(const std::string &)> &about_to_make);
  /// The path, handed over (empty when none was made).
  std::string take() { return std::move(path_); }
  ~PreparedCgroup();
  PreparedCgroup(const PreparedCgroup &) = delete;
  PreparedCgroup &operator=(const PreparedCgroup &) = delete;

 private:
  std::string path_;
};

/// Kills whatever is left in the cgroup and removes it (best effort).
void remove_cgroup(const std::string &cgroup);

}  // namespace ckpt::writer
