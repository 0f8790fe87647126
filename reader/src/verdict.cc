// The verdict pipe (verdict.h).
#include "verdict.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "preflight.h"

namespace ckpt::reader {

using namespace img;

namespace {

const char *stage_name(int stage) {
  switch (stage) {
    case RS_UNMAP: return "unmapping the old memory";
    case RS_MOVE: return "moving the vdso";
    case RS_MAP: return "mapping memory";
    case RS_FILL: return "reading memory from the image";
    case RS_PROTECT: return "setting memory protection";
    case RS_MM: return "setting the mm fields (PR_SET_MM_MAP)";
    case RS_CLONE:
    case RS_TID_TAKEN: return "creating threads";
    case RS_SIGNAL: return "queueing pending signals";
    case RS_CREDS: return "setting the user and group ids";
    case RS_TLS: return "setting the thread pointer (ARCH_SET_FS)";
    case RS_ROBUST_LIST: return "setting the robust futex list";
    case RS_RSEQ: return "registering rseq";
    case RS_CAPS: return "setting capabilities";
    case RS_SECUREBITS: return "setting securebits";
    case RS_NO_NEW_PRIVS: return "setting no_new_privs";
    case RS_LOCK_MEMORY: return "locking memory (mlock2)";
    case RS_LAZY: return "registering memory for lazy restore (userfaultfd)";
    case RS_GUARD: return "installing guard pages (MADV_GUARD_INSTALL)";
    case RS_SEAL: return "sealing a memfd after its mappings (F_ADD_SEALS)";
    default: return "starting";
  }
}

int reap(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR) {
  }
  return st;
}

}  // namespace

std::string describe_restorer_failure(const std::string &verdict) {
  // A stage byte and an errno byte; when two threads fail at once, the
  // first report is the one. A failed RS_ASSERT adds its line and condition.
  // (The blob's fail_assert: the line in two bytes, the file name, a NUL,
  // the condition.)
  if (verdict.size() >= 4 && static_cast<unsigned char>(verdict[0]) == RS_INTERNAL) {
    unsigned line = static_cast<unsigned char>(verdict[2]) | static_cast<unsigned char>(verdict[3]) << 8;
    std::string file = verdict.substr(4).c_str();
    size_t cond_at = std::min(verdict.size(), 4 + file.size() + 1);
    return "restore failed: internal error: " + file + ":" + std::to_string(line) +
           ": RS_ASSERT(" + verdict.substr(cond_at).c_str() + ") failed";
  }
  // A thread's tid taken after the preflight, still after the retries:
  // worded as the preflight words a tid taken before it.
  if (verdict.size() >= 6 && verdict[0] == RS_TID_TAKEN) {
    u32 tid = 0;
    for (int i = 0; i < 4; i++) tid |= u32(static_cast<unsigned char>(verdict[2 + i])) << (8 * i);
    return pid_taken_message(static_cast<i32>(tid), true);
  }
  return std::string("restore failed while ") + stage_name(verdict[0]) + ": " +
         strerror(static_cast<unsigned char>(verdict[1]));
}

std::string read_verdict(int fd) {
  std::string verdict;
  char buf[512];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    verdict.append(buf, n);
  }
  return verdict;
}

std::optional<std::string> checksum_failure(const std::string &verdict) {
  if (verdict.empty() || verdict[0] != RS_CHECKSUM) return std::nullopt;
  std::string line = verdict.substr(1);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

std::optional<rs_handover> handover_of(const std::string &verdict) {
  if (verdict.size() != 1 + sizeof(rs_handover) || verdict[0] != RS_OK) return std::nullopt;
  rs_handover where;
  std::memcpy(&where, verdict.data() + 1, sizeof where);
  return where;
}

Expected<rs_handover> await_verdict(int fd, pid_t pid) {
  std::string verdict = read_verdict(fd);
  close(fd);
  if (auto where = handover_of(verdict)) return *where;
  int st = reap(pid);
  if (verdict.empty()) {
    if (WIFSIGNALED(st))
      return make_error("the restorer died of signal %d before the process was running", WTERMSIG(st));
    return make_error("the restorer exited (status %d) before the process was running", WEXITSTATUS(st));
  }
  if (auto damaged = checksum_failure(verdict)) return Error(*damaged);
  if (verdict.size() >= 2 && verdict.size() % 2 == 0 && static_cast<unsigned char>(verdict[0]) < 32)
    return Error(describe_restorer_failure(verdict));
  while (!verdict.empty() && verdict.back() == '\n') verdict.pop_back();
  return Error(verdict);
}

Expected<int> wait_exit_status(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return make_error("waitpid: %s", strerror(errno));
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 1;
}

}  // namespace ckpt::reader
