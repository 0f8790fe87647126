// A swap file switched on for one test (root only), switched off and
// removed again when the test ends, so that pages can be swapped out on a
// machine that has no swap (MADV_PAGEOUT of anonymous memory does nothing
// without it).
#pragma once

#include <string>

namespace ckpt::test {

class SwapFile {
 public:
  /// Makes `path` (`bytes` long, allocated: swapon refuses a file with
  /// holes), writes a swap signature in it (mkswap) and switches it on.
  /// on() is false, and error() says why, when any step failed; what was
  /// done is undone.
  SwapFile(std::string path, unsigned long long bytes);
  /// swapoff (the kernel reads every page swapped there back in) and
  /// unlink.
  ~SwapFile();
  SwapFile(const SwapFile &) = delete;
  SwapFile &operator=(const SwapFile &) = delete;

  bool on() const { return on_; }
  const std::string &error() const { return error_; }
  /// Whether swapon failed because of where the file is (a file system
  /// without swap files: EINVAL) or what the test may do (EPERM): an
  /// environment the test skips in, not a failure.
  bool unsupported_here() const { return unsupported_; }

  /// Switches off and removes every swap file `prefix`PID of /proc/swaps
  /// whose PID no longer runs: one a killed test left on.
  static void sweep_stale(const std::string &prefix);

 private:
  std::string path_;
  bool on_ = false;
  bool unsupported_ = false;
  std::string error_;
};

}  // namespace ckpt::test
