#include "strict_seccomp.h"

#include <ckpt/img/records.h>

#include "procfs.h"

namespace ckpt::writer {

using namespace img;

Status refuse_strict_thread(pid_t pid, pid_t tid, const ProcStatus &status) {
  if (status.seccomp_mode != static_cast<u32>(SeccompMode::Strict)) return {};
  return make_error(
      "thread %d of process %d is in seccomp strict mode: a syscall injected into it kills it if imgtool "
      "dies meanwhile (--inject-strict-seccomp takes that risk)",
      tid, pid);
}

Status refuse_strict_seccomp(pid_t pid, bool descendants) {
  // A thread or child that is gone by now is the freeze's business, not ours.
  if (auto tids = list_threads(pid)) {
    for (pid_t tid : *tids)
      if (auto st = read_status(pid, tid)) CKPT_TRY(refuse_strict_thread(pid, tid, *st));
  }
  if (!descendants) return {};
  if (auto children = list_children(pid))
    for (pid_t child : *children) CKPT_TRY(refuse_strict_seccomp(child, true));
  return {};
}

}  // namespace ckpt::writer
