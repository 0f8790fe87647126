// restore --pidns: the restore runs inside a new pid namespace (with a
// private mount namespace and its own /proc), where the image's pids are
// free whatever this host has done with them. imgtool clones a small init
// into it (pid 1 there); the init restores the image as its child with the
// original pids, reaps orphans, and when the restored root exits, exits
// with the root's status, which ends the namespace (the kernel kills what
// is left in it). imgtool, outside, forwards signals to the root and
// passes the init's exit status on.
#pragma once

#include <functional>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/reader/restore.h>

#include "pid_file.h"
#include "restore_session.h"

namespace ckpt::reader {

/// The --pidns restore; `running` is called once the restored root runs.
/// Returns like restore_image: the exit status to exit with, or 0 with
/// --detach once the root runs (the init stays behind, serving it).
/// `pidfile` (opened before anything ran) gets the root's host pid.
img::Expected<int> restore_in_new_pid_namespace(const RestoreOptions &opt, const LoadedImage &loaded,
                                                PidFile &pidfile, const std::function<void()> &running);

/// restore --pidns without the privilege to recreate pids (not root, no
/// CAP_CHECKPOINT_RESTORE): the checks are made as the user (the host's
/// files and owners as they are, not as a user namespace maps them), then
/// restore_in_new_pid_namespace() calls enter_own_user_namespace().
void plan_own_user_namespace();
bool own_user_namespace_planned();

/// imgtool moves into a new user namespace that
/// maps only its own uid and gid to themselves, so it holds every
/// capability over the namespaces it creates next (the pid namespace whose
/// clone3 set_tid needs CAP_CHECKPOINT_RESTORE in its owner, the mount
/// namespace of its /proc) and nothing more on the host. Fails with one
/// line naming what is missing. imgtool must be single-threaded.
img::Status enter_own_user_namespace();

/// Whether enter_own_user_namespace() was done: only the process's own ids
/// are mapped (and its groups cannot change: setgroups is denied there).
bool in_own_user_namespace();

/// The pid as this (the host's) pid namespace sees it of the process that
/// is `inner_pid` in the namespace whose init is our child `init`; 0 if
/// none. (Field NSpid of /proc/PID/status lists a pid in each namespace,
/// outermost first.)
pid_t host_pid_of(pid_t init, pid_t inner_pid);

}  // namespace ckpt::reader
