// Resource limits, POSIX timers and the robust list of a process read from
// outside (prlimit64, /proc/PID/limits and /proc/PID/timers,
// get_robust_list). See procfs.h.
#include "procfs_text.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <sys/resource.h>
#include <sys/syscall.h>

namespace ckpt::writer {

using img::make_error;
using namespace procfs_text;

namespace {

// The kernel's RLIM_NLIMITS (asm-generic/resource.h); glibc's __RLIM_NLIMITS
// is the same number but not exposed under that name everywhere.
constexpr unsigned kRlimitCount = 16;

// "unlimited"), units.
Expected<std::vector<img::RlimitRecord>> read_rlimits_from_proc(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/limits";
  auto text = read_file(path);
  if (!text) return text.error();
  std::vector<img::RlimitRecord> out;
  size_t pos = text->find('\n');
  for (unsigned r = 0; r < kRlimitCount; ++r) {
    if (pos == std::string::npos) return make_error("%s: %u limits, expected %u", path.c_str(), r, kRlimitCount);
    size_t end = text->find('\n', pos + 1);
    std::string line = text->substr(pos + 1, end == std::string::npos ? std::string::npos : end - pos - 1);
    pos = end;
    if (line.size() < 26) return make_error("%s: short line '%s'", path.c_str(), line.c_str());
    char soft[32] = {}, hard[32] = {};
    if (std::sscanf(line.c_str() + 26, "%31s %31s", soft, hard) != 2)
      return make_error("%s: cannot parse '%s'", path.c_str(), line.c_str());
    auto value = [](const char *v) { return std::strcmp(v, "unlimited") == 0 ? ~u64(0) : std::strtoull(v, nullptr, 10); };
    img::RlimitRecord rec{};
    rec.pid = pid;
    rec.resource = r;
    rec.cur = value(soft);
    rec.max = value(hard);
    out.push_back(rec);
  }
  return out;
}

}  // namespace

Expected<std::vector<img::RlimitRecord>> read_rlimits(pid_t pid) {
  // The raw syscall, not glibc's prlimit(), so RLIM64_INFINITY comes back
  // as the kernel's ~0 without any translation.
  struct KernelRlimit64 {
    u64 cur, max;
  };
  std::vector<img::RlimitRecord> out;
  for (unsigned r = 0; r < kRlimitCount; ++r) {
    KernelRlimit64 old{};
    if (syscall(SYS_prlimit64, pid, r, nullptr, &old) != 0) {
      // prlimit64 on another user's process needs CAP_SYS_RESOURCE, which
      // root lacks on these machines; /proc/PID/limits says the same.
      if (errno == EPERM) return read_rlimits_from_proc(pid);
      return make_error("pid %d: prlimit64(resource %u): %s", pid, r, strerror(errno));
    }
    img::RlimitRecord rec{};
    rec.pid = pid;
    rec.resource = r;
    rec.cur = old.cur;
    rec.max = old.max;
    out.push_back(rec);
  }
  return out;
}

Expected<std::vector<PosixTimerInfo>> read_posix_timers(pid_t pid) {
  // fs/proc/base.c show_timer() prints, per timer:
  //   ID: <id>
  //   signal: <signo>/<sival_ptr as %px: 16 hex digits, no 0x>
  //   notify: <signal|none|thread>/<pid|tid>.<nr>
  //   ClockID: <clock>
  // The word before '/' is sigev_notify without SIGEV_THREAD_ID; "tid"
  // after it means SIGEV_THREAD_ID was set. Timers come newest first.
  std::string path = proc_file(pid, 0, "timers");
  auto text = read_file(path);
  if (!text) return text.error().context("pid " + std::to_string(pid));
  std::vector<PosixTimerInfo> out;
  size_t lineno = 0;
  CKPT_TRY(for_each_text_line(*text, [&](std::string_view line) -> img::Status {
    ++lineno;
    std::string_view key, value;
    if (trim(line).empty()) return img::Status::ok();
    if (!split_key(line, key, value))
      return make_error("pid %d: %s line %zu: no ':'", pid, path.c_str(), lineno);
    if (key == "ID") {
      out.emplace_back();
      if (!parse_i32(value, out.back().id))
        return make_error("pid %d: %s line %zu: bad ID", pid, path.c_str(), lineno);
      return img::Status::ok();
    }
    if (out.empty())
      return make_error("pid %d: %s line %zu: field before the first ID", pid, path.c_str(),
                        lineno);
    PosixTimerInfo &t = out.back();
    bool ok = true;
    if (key == "signal") {
      size_t slash = value.find('/');
      ok = slash != std::string_view::npos && parse_i32(value.substr(0, slash), t.signo);
      if (ok) {
        std::string_view ptr = value.substr(slash + 1);
        if (ptr.substr(0, 2) == "0x") ptr.remove_prefix(2);
        ok = parse_u64(ptr, 16, t.sigev_value);
      }
    } else if (key == "notify") {
      size_t slash = value.find('/');
      size_t dot = value.find('.', slash == std::string_view::npos ? 0 : slash);
      ok = slash != std::string_view::npos && dot != std::string_view::npos;
      if (ok) {
        std::string_view how = value.substr(0, slash);
        std::string_view who = value.substr(slash + 1, dot - slash - 1);
        int nr = 0;
        ok = parse_i32(value.substr(dot + 1), nr);
        if (how == "signal") t.notify = SIGEV_SIGNAL;
        else if (how == "none") t.notify = SIGEV_NONE;
        else if (how == "thread") t.notify = SIGEV_THREAD;
        else ok = false;
        if (who == "tid") {
          t.notify |= SIGEV_THREAD_ID;
          t.notify_tid = nr;
        } else if (who != "pid") {
          ok = false;
        }
      }
    } else if (key == "ClockID") {
      ok = parse_i32(value, t.clock_id);
    }
    if (!ok)
      return make_error("pid %d: %s line %zu: bad %.*s value \"%.*s\"", pid, path.c_str(), lineno,
                        int(key.size()), key.data(), int(value.size()), value.data());
    return img::Status::ok();
  }));
  std::sort(out.begin(), out.end(),
            [](const PosixTimerInfo &a, const PosixTimerInfo &b) { return a.id < b.id; });
  return out;
}

Expected<RobustList> read_robust_list(pid_t tid) {
  // get_robust_list(2) takes a tid (0 = the caller) and needs ptrace read
  // access to it; glibc has no wrapper.
  void *head = nullptr;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, tid, &head, &len) != 0)
    return make_error("tid %d: get_robust_list: %s", tid, strerror(errno));
  RobustList r;
  r.head = reinterpret_cast<uintptr_t>(head);
  r.len = len;
  return r;
}

}  // namespace ckpt::writer
