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
// So the helper forks a guard that holds a copy of every userfaultfd the
// helper serves (the first, and each forked child's, passed over a socket)
// and a pidfd of the restored process. While the guard holds them, the
// userfaultfds stay open: a fault after the helper's death waits instead of
// reading zeros. When the helper ends without saying it finished (the
// socket closes without the 'f' byte), the guard SIGKILLs the restored
// process and its descendants, then exits. The program is killed, never run
// on wrong.
#pragma once

#include <sys/types.h>

namespace ckpt::reader {

class LazyGuard {
 public:
  /// Forks the guard (from the helper). `uffd` is the restored process's
  /// userfaultfd, `process` a pidfd of it (may be -1: then its pid).
  /// False when no guard could be made (the helper then serves unguarded).
  bool start(int uffd, int process, pid_t pid);
  /// A child's userfaultfd (UFFD_EVENT_FORK) for the guard to hold.
  void hold(int child_uffd);
  /// Every page is in or every process gone: the guard exits quietly (and
  /// is reaped here).
  void finished();

 private:
  int sock_ = -1;
  pid_t pid_ = 0;
};

}  // namespace ckpt::reader
