// A process of the test's own created with a pid it chooses, to take a
// pid or tid a restore needs at a moment the test picks.
#pragma once

#include <string>
#include <sys/types.h>

namespace ckpt::test {

/// Holds `pid` with a child of ours made by clone3 set_tid (needs root or
/// CAP_CHECKPOINT_RESTORE in our pid namespace), which only waits to be
/// killed. release() (or the destructor) kills and reaps it, which frees
/// the pid. held() is false, and error() says why, when the pid could not
/// be taken (in use already, or not permitted).
class PidHolder {
 public:
  explicit PidHolder(pid_t pid);
  ~PidHolder() { release(); }
  PidHolder(const PidHolder &) = delete;
  PidHolder &operator=(const PidHolder &) = delete;

  bool held() const { return holder_ > 0; }
  const std::string &error() const { return error_; }
  /// Kills and reaps the holder: the pid is free when this returns.
  void release();

 private:
  pid_t holder_ = -1;
  std::string error_;
};

}  // namespace ckpt::test
