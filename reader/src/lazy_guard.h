// --lazy: what happens when the lazy-pages helper dies before every stored
// page is in (killed by an OOM killer, a kill -9; docs/DECISIONS.md 162).
//
// The kernel does not fail the faults: when the last reference to a
// userfaultfd is closed, userfaultfd_release() unregisters every VMA and
// wakes the waiting faults, which then retry as ordinary anonymous faults
// and get zero pages (no SIGBUS: that is only UFFD_FEATURE_SIGBUS, asked
// for while registered; checked on Linux 6.18). The restored program would
// run on reading zeros where its data was.
//
// So a guard holds a copy of every userfaultfd the
// helper serves (the first, and each forked child's, passed over a socket)
// and a pidfd of the restored process. While the guard holds them, the
// userfaultfds stay open: a fault after the helper's death waits instead of
// reading zeros. When the helper ends without saying it finished (the
// socket closes without the 'f' byte), the guard SIGKILLs the restored
// process and its descendants, then exits. The program is killed, never run
// on wrong.
//
// The guard is imgtool's child, forked just before the helper, not the
// helper's: at a warm start's end the helper says 'f' and exits at once,
// the guard exits on the 'f' at the same time, and imgtool reaps both. A
// guard forked by the helper had to be waited for by the helper before it
// exited (or it would outlive imgtool): one more wake-up in a row, and the
// two processes' teardowns one after the other (DECISIONS 266).
#pragma once

#include <sys/types.h>

#include <initializer_list>

namespace ckpt::reader {

/// For imgtool's forks that outlive it (the guard, the helper): each of
/// `keep` that is open (>= 0) is moved above stdio if it is in 0-2 (an
/// imgtool started with them closed; *fd is updated), every other fd is
/// closed, and /dev/null goes on 0-2.
void keep_only(std::initializer_list<int *> keep);

/// Forks the guard (from imgtool, before the helper). `uffd` is the
/// restored process's userfaultfd, `process` a pidfd of it (may be -1: then
/// its pid). Returns the guard's pid, or -1 when no guard could be made
/// (the helper then serves unguarded); `*helper_end` is the socket end the
/// helper keeps (imgtool closes its copy once the helper is forked: the
/// guard's EOF is the helper's end).
pid_t fork_lazy_guard(int uffd, int process, pid_t pid, int *helper_end);

/// The helper's side of its guard.
class LazyGuard {
 public:
  /// `sock`: the helper's end (fork_lazy_guard), or -1: no guard.
  explicit LazyGuard(int sock) : sock_(sock) {}
  /// A child's userfaultfd (UFFD_EVENT_FORK) for the guard to hold.
  void hold(int child_uffd);
  /// Every page is in or every process gone: the guard exits quietly
  /// (imgtool reaps it).
  void finished();

 private:
  int sock_ = -1;
};

}  // namespace ckpt::reader
