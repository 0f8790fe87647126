// Test support for `imgtool dump`: a target process (tests/support/
// spawned_process.h), and small readers of its /proc state.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "spawned_process.h"
#include "subprocess.h"

namespace ckpt::dumptest {

/// The imgtool under test: $CKPT_TEST_IMGTOOL if set, else the one built.
std::string imgtool();

/// A dump target (spawned_process.h): stdin a pipe that never gets data,
/// stdout read up to "ready", stderr the test's.
class Target : public test::SpawnedProcess {
 public:
  explicit Target(const std::vector<std::string> &argv, int ready_timeout_s = 30);
};

using namespace test::process_names;

/// Polls (bounded) until every thread of pid is blocked in system call
/// `nr` (per /proc/PID/task/TID/syscall).
bool wait_all_in_syscall(pid_t pid, long nr, int timeout_s = 10);
/// Reads 8 bytes at addr of process pid (process_vm_readv). False on error.
bool read_remote_u64(pid_t pid, unsigned long addr, unsigned long *value);

bool path_exists(const std::string &path);  // lstat: symlinks count

/// Runs argv with stderr merged into stdout (in order), stdin /dev/null.
test::RunResult run_merged(const std::vector<std::string> &argv, int hang_guard_s = 120);
/// `diff -u` of two texts, for failure messages.
std::string unified_diff(const std::string &a, const std::string &b, const std::string &label_a,
                         const std::string &label_b);
/// Does /proc/cpuinfo list this flag?
bool cpu_has_flag(const std::string &flag);

}  // namespace ckpt::dumptest
