#include "swap_file.h"

#include <cerrno>
#include <cstdio>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/swap.h>
#include <unistd.h>

#include "subprocess.h"

namespace ckpt::test {

SwapFile::SwapFile(std::string path, unsigned long long bytes) : path_(std::move(path)) {
  int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    error_ = "create " + path_ + ": " + std::strerror(errno);
    path_.clear();  // not ours to remove
    return;
  }
  int e = posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  close(fd);
  if (e != 0) {
    error_ = "fallocate " + path_ + ": " + std::strerror(e);
    return;
  }
  RunResult mk = run({"mkswap", path_}, 30);
  if (!mk.exited || mk.exit_code != 0) {
    error_ = "mkswap " + path_ + ": " + mk.status() + " " + mk.err;
    return;
  }
  if (swapon(path_.c_str(), 0) != 0) {
    unsupported_ = errno == EINVAL || errno == EPERM;
    error_ = "swapon " + path_ + ": " + std::strerror(errno);
    unlink(path_.c_str());
    path_.clear();
    return;
  }
  on_ = true;
}

void SwapFile::sweep_stale(const std::string &prefix) {
  std::FILE *swaps = std::fopen("/proc/swaps", "re");
  if (!swaps) return;
  char line[4096];
  while (std::fgets(line, sizeof line, swaps)) {
    std::string path(line, std::strcspn(line, " \t\n"));
    if (path.compare(0, prefix.size(), prefix) != 0) continue;
    long pid = std::atol(path.c_str() + prefix.size());
    if (pid <= 0 || kill(pid_t(pid), 0) == 0 || errno != ESRCH) continue;
    if (swapoff(path.c_str()) == 0) unlink(path.c_str());
  }
  std::fclose(swaps);
}

SwapFile::~SwapFile() {
  if (on_ && swapoff(path_.c_str()) != 0) {
    // Left on, the file cannot be removed either: say so where the test's
    // output shows it rather than fail silently.
    std::fprintf(stderr, "SwapFile: swapoff %s: %s (run swapoff by hand)\n", path_.c_str(), std::strerror(errno));
    return;
  }
  if (!path_.empty()) unlink(path_.c_str());
}

}  // namespace ckpt::test
