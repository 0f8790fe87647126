// A process checkpointing itself through libckpt (ckpt_checkpoint): the
// calling thread blocks in read() on a pipe from this dumper, and the
// image records that read as having returned a value the library knows,
// so the restored copy tells itself apart from the original.
#pragma once

#include <sys/types.h>

#include <ckpt/img/expected.h>

#include "capture.h"

namespace ckpt::writer {

/// Waits (bounded) until thread tid of pid sits in read(), as
/// /proc/PID/task/TID/syscall shows: the library enters it only after
/// spawning us, so freezing earlier would catch it on the way.
img::Status await_caller_in_read(pid_t pid, pid_t tid);

/// In the captured registers of thread tid, turns the interrupted read()
/// into one that returned `value` (no syscall restart), after checking
/// that the thread is indeed interrupted in read().
img::Status resume_caller_with(ProcessCapture &pc, pid_t tid, img::u64 value);

}  // namespace ckpt::writer
