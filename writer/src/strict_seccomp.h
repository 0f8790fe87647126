// Threads in seccomp strict mode are never borrowed for an injected
// syscall unless the user takes the risk (DECISIONS 179): strict mode lets
// a thread make only read, write, exit and rt_sigreturn, and the dump's
// queries pass only because PTRACE_O_SUSPEND_SECCOMP suspends the check
// while we trace the thread. That suspension is a ptrace flag: it goes with
// the tracer. A dumper killed while such a thread sits at the entry stop of
// an injected syscall lets the thread run into the seccomp check with our
// syscall number, and the kernel kills the thread (__secure_computing_strict,
// do_exit(SIGKILL)). No return frame helps there, and the thread's own
// values (its sigaltstack, clear_child_tid, securebits) can be read no other
// way, so such a dump is refused in one line instead.
#pragma once

#include <sys/types.h>

#include <ckpt/img/expected.h>

#include "procfs.h"

namespace ckpt::writer {

/// Refuses (one line naming the thread) when a thread of process pid is in
/// seccomp strict mode; with `descendants`, of any process of its tree.
/// Before the freeze; capture_process checks each frozen thread again.
img::Status refuse_strict_seccomp(pid_t pid, bool descendants);

/// The same refusal for one thread whose status is already read.
img::Status refuse_strict_thread(pid_t pid, pid_t tid, const ProcStatus &status);

}  // namespace ckpt::writer
