// Freezing a process: every thread seized with PTRACE_SEIZE and stopped
// with PTRACE_INTERRUPT, including threads born while we seize, and let go
// again exactly as it was found (running, or stopped by job control).
#pragma once

#include <atomic>
#include <chrono>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>

namespace ckpt::writer {

using img::Status;

struct FrozenThread {
  pid_t tid = 0;
  int stop_signal = 0;    ///< WSTOPSIG of the stop we hold it in
  bool group_stop = false;  ///< held in a job-control group-stop
  bool stuck = false;       ///< never reached a stop (timed out)
};

class FrozenProcess {
 public:
  /// Seizes and stops every thread of pid. Fails cleanly (nothing left
  /// attached) on a missing process, one traced by someone else, a zombie,
  /// or one we may not trace; fails when a thread does not stop within a
  /// few seconds (state D), or when *cancel becomes true meanwhile.
  /// `leader_only`: only the main thread is seized and stopped, the others
  /// run on (snapshot mode's reap of its copy, DECISIONS.md 176).
  static img::Expected<FrozenProcess> freeze(pid_t pid, const std::atomic<bool> *cancel = nullptr,
                                             bool leader_only = false);

  FrozenProcess(FrozenProcess &&other) noexcept;
  FrozenProcess &operator=(FrozenProcess &&) = delete;
  /// Lets every thread go (detach), unless release() or kill() already did.
  ~FrozenProcess();

  pid_t pid() const { return pid_; }
  /// The threads, the thread-group leader first.
  const std::vector<FrozenThread> &threads() const { return threads_; }
  /// The process was stopped by job control before we came.
  bool was_stopped() const { return was_stopped_; }
  int pidfd() const { return pidfd_; }

  /// Detaches from every thread; a job-control-stopped process stays
  /// stopped (the kernel re-enters the group stop on detach; this waits
  /// until it has).
  Status release();
  /// SIGKILLs the process and reaps nothing (it is not our child); then
  /// detaches.
  Status kill();

 private:
  enum class StopWait { Stopped, Gone, TimedOut, Cancelled };

  FrozenProcess() = default;
  Status seize_all();
  StopWait wait_for_stop(FrozenThread &t, std::chrono::milliseconds timeout, bool cancellable);
  void await_group_stop() const;

  pid_t pid_ = 0;
  int pidfd_ = -1;
  bool was_stopped_ = false;
  bool attached_ = false;
  bool leader_only_ = false;
  const std::atomic<bool> *cancel_ = nullptr;
  std::vector<FrozenThread> threads_;
};

}  // namespace ckpt::writer
