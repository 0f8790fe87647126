// A check of the snapshot copy against the frozen target (DECISIONS.md
// 217). Once, under load, a snapshot-mode image held zeros in the two
// pages of the main thread's stack at and above rsp, the pages the target
// wrote right after the release; the cause is not known. So while the
// target is still frozen each thread's live stack (from the red zone below
// rsp to the end of the page above rsp's) is read, and once the copy is
// planned the image's bytes there, as planned from the copy, must be the
// same. A copy that disagrees fails the dump in one line: a wrong image is
// never written.
#pragma once
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>

#include "capture.h"
#include "excluded_pages.h"

namespace ckpt::writer {

/// Bytes of [from, from + bytes.size()) of the target, read while frozen.
struct StackWitness {
  pid_t tid = 0;
  img::u64 from = 0;
  std::vector<img::u8> bytes;
};

/// Reads, while pc's process is frozen and before its copy is made, the
/// live stack of each thread whose stack pointer is in a private mapping.
img::Expected<std::vector<StackWitness>> read_stack_witnesses(const ProcessCapture &pc);

/// What the image will hold at each witness, by `plan` (the copy's): the
/// copy's bytes where it stores or maps them, zeros where it says Zero.
img::Status check_stack_witnesses(pid_t target, pid_t copy, const std::vector<StackWitness> &witnesses,
                                  const std::vector<VmaPlan> &plan, const ExcludedRanges &excluded);

/// The page holding addr in process pid made all zeros (the fault point
/// snapshot-copy-stack-zeroed: a copy gone wrong, for the tests).
void zero_page_for_test(pid_t pid, img::u64 addr);

}  // namespace ckpt::writer
