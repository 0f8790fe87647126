// Privilege state of a restored thread: capability sets, securebits,
// no_new_privs and seccomp. What the image asks for is checked against
// what this restore holds before anything starts (a restored process must
// never hold more privilege than the original, and what cannot be set is
// refused with one line); the restorer then sets it on each thread.
#pragma once

#include <vector>

#include <ckpt/img/model.h>

#include "arg_arena.h"

struct rs_thread;

namespace ckpt::reader {

/// One thread's privileges as the image gives them.
struct ThreadPrivileges {
  img::u64 effective = 0, permitted = 0, inheritable = 0, bounding = 0, ambient = 0;
  img::u32 securebits = 0;
  bool no_new_privs = false;
  img::u32 seccomp_mode = 0;                          ///< img::SeccompMode
  std::vector<const img::SeccompFilterRecord *> filters;  ///< oldest first
};

/// This process's own privileges: where every restored thread starts.
struct OwnPrivileges {
  img::u64 effective = 0, permitted = 0, inheritable = 0, bounding = 0, ambient = 0;
  img::u32 securebits = 0;
  bool no_new_privs = false;
  img::u32 seccomp_mode = 0;
};

img::Expected<OwnPrivileges> own_privileges();

/// The image's privileges for thread `t`. An image from before the
/// per-thread fields (no kThreadPrivileges) gives the task's capability
/// sets and leaves securebits as `own` has them.
ThreadPrivileges thread_privileges(const img::CkptView &view, const img::ThreadRecord &t, const OwnPrivileges &own);

/// What this restore, here and now, cannot give back exactly: capabilities
/// it does not hold itself, a bounding set or securebits it may not change,
/// confinement of its own (seccomp, no_new_privs) the restored process would
/// inherit, and filter chains the kernel rejects (each distinct chain is
/// installed in a throwaway child first).
img::Status check_privileges_here(const img::CkptView &view);

/// Fills the privilege fields of the restorer's thread `t` (check_privileges_here
/// said they can be set): capability sets and securebits when they differ
/// from `own` or the ids change, no_new_privs, and the seccomp mode with
/// the filters copied into the arena.
img::Status set_thread_privileges(ArgArena &arena, const img::CkptView &view, const img::ThreadRecord &tr,
                                  const OwnPrivileges &own, bool set_creds, rs_thread &t);

}  // namespace ckpt::reader
