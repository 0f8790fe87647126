// The helpers of the fd-table tests (fds_table_test.cc, fds_test.cc): a
// child with only the fds a test made, its table read through a pidfd.
#pragma once

#include "fds.h"
#include "procfs.h"

#include "child_process.h"
#include "subprocess.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace ckpt::writer::fdtest {

using ckpt::test::Child;
using img::FdFlags;
using img::FdType;
using img::i64;
using img::u32;
using img::u64;

constexpr int kIn = 200, kOut = 201;  // the child's command/reply pipes

inline int pidfd_open(pid_t pid) { return int(syscall(SYS_pidfd_open, pid, 0)); }

/// In the child: moves the command/reply pipes to kIn/kOut and each
/// (fd, target) in keep to its target, closes every other fd, and points
/// 0, 1, 2 at /dev/null, so the table holds only what the test made.
inline void isolate_fds(int in, int out, std::initializer_list<std::pair<int, int>> keep = {}) {
  CHILD_CHECK(dup2(in, kIn) == kIn, out);
  CHILD_CHECK(dup2(out, kOut) == kOut, out);
  for (auto [fd, target] : keep) CHILD_CHECK(dup2(fd, target) == target, kOut);
  for (int fd = 3; fd < 1024; ++fd) {
    bool kept = fd == kIn || fd == kOut;
    for (auto [from, target] : keep) kept = kept || fd == target;
    if (!kept) close(fd);
  }
  int null = open("/dev/null", O_RDWR);
  CHILD_CHECK(null >= 0, kOut);
  for (int fd = 0; fd < 3; ++fd) CHILD_CHECK(dup2(null, fd) == fd, kOut);
  if (null > 2) close(null);
}

/// In the child: puts fd at number target (with FD_CLOEXEC if asked) and
/// closes the original.
inline void place(int fd, int target, bool cloexec = false) {
  CHILD_CHECK(fd >= 0, kOut);
  CHILD_CHECK(dup3(fd, target, cloexec ? O_CLOEXEC : 0) == target, kOut);
  close(fd);
}

/// In the child: one non-blocking read of up to 64 KiB, or "EAGAIN".
inline std::string read_now(int fd) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  std::string buf(65536, '\0');
  ssize_t n = read(fd, buf.data(), buf.size());
  if (n < 0) return "EAGAIN";
  buf.resize(size_t(n));
  return buf;
}

/// In the child: non-blocking reads until EAGAIN, all they returned;
/// `reads` counts them (one packet each in packet mode).
inline std::string read_all_now(int fd, int *reads = nullptr) {
  std::string got;
  for (;;) {
    std::string s = read_now(fd);
    if (s == "EAGAIN") return got;
    got += s;
    if (reads) ++*reads;
  }
}

/// Reads what a pipe/FIFO holds through a new read end opened on
/// /proc/PID/fd/N, for ends the child only writes to.
inline std::string read_via_proc(pid_t pid, int fd) {
  std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  int r = open(link.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (r < 0) return std::string("open failed: ") + strerror(errno);
  std::string buf(65536, '\0');
  ssize_t n = read(r, buf.data(), buf.size());
  close(r);
  if (n < 0) return "EAGAIN";
  buf.resize(size_t(n));
  return buf;
}

inline std::string pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char((i * 7 + seed) % 251);
  return s;
}

inline std::vector<img::u8> bytes(const std::string &s) { return {s.begin(), s.end()}; }

inline const FdInfo *find_fd(const FdTable &t, int fd) {
  for (const FdInfo &f : t.fds)
    if (f.record.fd == fd) return &f;
  return nullptr;
}

inline const PipeInfo *find_pipe(const FdTable &t, img::u32 pipe_id) {
  for (const PipeInfo &p : t.pipes)
    if (p.pipe_id == pipe_id) return &p;
  return nullptr;
}

/// The fd table of a child that has said "ready", read through a pidfd of
/// it; a child that does not get there fails the test.
inline img::Expected<FdTable> fds_of_ready_child(Child &child) {
  if (!child.started()) {
    ADD_FAILURE() << "the child did not start";
    return img::make_error("the child did not start");
  }
  std::string reply = child.reply();
  if (reply != "ready") {
    ADD_FAILURE() << "the child said \"" << reply << "\", not \"ready\"";
    return img::make_error("the child is not ready");
  }
  int pidfd = pidfd_open(child.pid());
  if (pidfd < 0) {
    ADD_FAILURE() << "pidfd_open " << child.pid() << ": " << strerror(errno);
    return img::make_error("no pidfd");
  }
  auto table = read_fds(child.pid(), pidfd);
  close(pidfd);
  return table;
}

inline size_t count_own_fds() {
  size_t n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  while (readdir(d)) ++n;
  closedir(d);
  return n;
}

inline int default_pipe_size() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  int size = fcntl(p[0], F_GETPIPE_SZ);
  close(p[0]);
  close(p[1]);
  return size;
}

using ckpt::test::TempDir;

inline bool write_file(const std::string &path, const std::string &content) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = ckpt::test::write_all(fd, content);
  close(fd);
  return ok;
}

}  // namespace ckpt::writer::fdtest
