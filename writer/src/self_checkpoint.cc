#include "self_checkpoint.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sys/syscall.h>
#include <unistd.h>

#include "procfs.h"

namespace ckpt::writer {

using namespace img;

// -ERESTARTSYS: what a read() blocked on an empty pipe reports when
// PTRACE_INTERRUPT wakes it (pipe_read's wait_event_interruptible).
static constexpr long kErestartsys = 512;

Status await_caller_in_read(pid_t pid, pid_t tid) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", pid, tid);
  long pause_ns = 20'000;
  for (;;) {
    // "NR arg0 ... sp pc" while blocked in a syscall, "running" or "-1 sp
    // pc" otherwise. Reading it needs ptrace access: the library grants
    // it with PR_SET_PTRACER just before read(), so EACCES means "not yet".
    auto text = read_file(path);
    if (text && std::strtol(text->c_str(), nullptr, 10) == SYS_read && text->rfind("running", 0) != 0) return {};
    if (!text && access(("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid)).c_str(), F_OK) != 0)
      return make_error("thread %d of process %d is gone", tid, pid);
    if (std::chrono::steady_clock::now() >= deadline)
      return make_error("thread %d of process %d did not block in ckpt_checkpoint's read() within 10 s", tid, pid);
    timespec ts{0, pause_ns};
    nanosleep(&ts, nullptr);
    if (pause_ns < 2'000'000) pause_ns *= 2;
  }
}

Status resume_caller_with(ProcessCapture &pc, pid_t tid, u64 value) {
  for (ThreadCapture &t : pc.threads) {
    if (t.tid != tid) continue;
    if (t.regs.orig_rax != SYS_read || static_cast<long>(t.regs.rax) != -kErestartsys)
      return make_error("thread %d is not blocked in ckpt_checkpoint's read() (syscall %lld, result %lld)", tid,
                        (long long)t.regs.orig_rax, (long long)t.regs.rax);
    // rip already points past the syscall instruction; orig_rax = -1 says
    // "not in a syscall", so restore resumes there with rax as the result.
    t.regs.rax = value;
    t.regs.orig_rax = ~0ull;
    return {};
  }
  return make_error("process %d has no thread %d", pc.pid, tid);
}

}  // namespace ckpt::writer
