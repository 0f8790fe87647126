#include "process_state.h"
#include "process_state_detail.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <set>
#include <sstream>
#include <time.h>
#include <unistd.h>

namespace ckpt::test {
namespace state_detail {

bool read_text(const std::string &path, std::string &out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return !f.bad();
}

std::string read_link(const std::string &path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  return n < 0 ? std::string("<readlink: ") + strerror(errno) + ">" : std::string(buf, size_t(n));
}

std::vector<std::string> lines_of(const std::string &text) {
  std::vector<std::string> lines;
  std::istringstream ss(text);
  for (std::string line; std::getline(ss, line);) lines.push_back(line);
  return lines;
}

std::string trim(const std::string &s) {
  size_t a = s.find_first_not_of(" \t");
  size_t b = s.find_last_not_of(" \t\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// Runs of blanks become one space: column padding is not state.
std::string squeeze(const std::string &s) {
  std::string out;
  bool blank = false;
  for (char c : trim(s)) {
    if (c == ' ' || c == '\t') {
      blank = true;
      continue;
    }
    if (blank) out += ' ';
    blank = false;
    out += c;
  }
  return out;
}

std::vector<std::string> names_in(const std::string &dir) {
  std::vector<std::string> names;
  if (DIR *d = opendir(dir.c_str())) {
    while (dirent *e = readdir(d))
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    closedir(d);
  }
  // Numeric names (fds, tids) in numeric order.
  std::sort(names.begin(), names.end(), [](const std::string &a, const std::string &b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  return names;
}

std::string one_line(const std::string &s) {
  std::string out;
  for (char c : s) {
    if (c == '\0') out += "\\0";
    else if (c == '\n') out += " | ";
    else out += c;
  }
  return out;
}

}  // namespace state_detail

namespace {

using namespace state_detail;

// /proc/PID/status lines that change while a process merely exists, or
// that a restore cannot and need not reproduce. Everything else is compared
// (a line a newer kernel adds is compared until someone decides otherwise).
const std::set<std::string> kVolatileStatus = {
    "State",                       // running/sleeping at the instant of reading
    "VmPeak",                      // high-water marks include the restorer's own
    "VmHWM",                       //   temporary mappings and page-ins
    "VmRSS", "RssAnon", "RssFile", // resident pages: a restore (and --lazy most)
    "RssShmem", "VmPTE", "VmSwap", //   pages in on touch, not as before
    "SigQ",                        // queued signals of the whole real uid / limit
                                   //   (the limit is in limits)
    "FDSize",                      // capacity of the kernel's fd table: grows with the
                                   //   highest fd ever used (a restore uses high scratch
                                   //   fds), invisible to the program
    "voluntary_ctxt_switches",     // scheduling counters
    "nonvoluntary_ctxt_switches",
};

// Per-thread status lines; the others are process-wide and compared once at
// the process level (the thread-group leader's values).
const std::set<std::string> kThreadStatus = {
    "Name", "Pid", "TracerPid", "Uid", "Gid", "Groups", "NSpid", "SigPnd", "SigBlk",
    "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters",
    "Speculation_Store_Bypass", "SpeculationIndirectBranch", "Cpus_allowed", "Cpus_allowed_list",
    "Mems_allowed", "Mems_allowed_list", "x86_Thread_features", "x86_Thread_features_locked"};

void add_status(const std::string &text, const std::string &prefix, bool thread,
                std::map<std::string, std::string> &fields) {
  for (const std::string &line : lines_of(text)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    if (kVolatileStatus.count(name)) continue;
    if (thread && !kThreadStatus.count(name)) continue;
    fields[prefix + name] = squeeze(line.substr(colon + 1));
  }
}

// /proc/PID/stat fields compared, by their 1-based number in proc(5). Left
// out: state (3); fault counts and CPU times (10-17, 42-44): accumulate while
// running; starttime (22): the kernel sets it at fork and nothing can set it
// back (CRIU has the same difference); rss (24); kstkesp/kstkeip (29, 30):
// only filled for a dumping task; the obsolete signal masks (31-34): status
// has them in full; wchan, nswap, cnswap (35-37): zero or scheduling
// dependent; processor (39): where it last ran.
struct StatField {
  int number;
  const char *name;
  bool per_thread;
};
const StatField kStatFields[] = {
    {4, "ppid", false},         {5, "pgrp", false},          {6, "session", false},
    {7, "tty_nr", false},       {8, "tpgid", false},         {9, "flags", true},
    {18, "priority", true},     {19, "nice", true},          {20, "num_threads", false},
    {21, "itrealvalue", false}, {23, "vsize", false},        {25, "rsslim", false},
    {26, "startcode", false},   {27, "endcode", false},      {28, "startstack", false},
    {38, "exit_signal", false}, {40, "rt_priority", true},   {41, "policy", true},
    {45, "start_data", false},  {46, "end_data", false},     {47, "start_brk", false},
    {48, "arg_start", false},   {49, "arg_end", false},      {50, "env_start", false},
    {51, "env_end", false},     {52, "exit_code", false},
};

void add_stat(const std::string &text, const std::string &prefix, bool thread,
              std::map<std::string, std::string> &fields) {
  // Field 2 (comm) may hold spaces and parentheses: split after the last ')'.
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return;
  std::istringstream ss(text.substr(paren + 1));
  std::vector<std::string> rest;  // rest[0] is field 3
  for (std::string f; ss >> f;) rest.push_back(f);
  for (const StatField &f : kStatFields) {
    if (thread && !f.per_thread) continue;
    size_t at = size_t(f.number - 3);
    std::string value = at < rest.size() ? rest[at] : "<missing>";
    if (f.number == 9) {
      // PF_FORKNOEXEC (0x40) and PF_SUPERPRIV (0x100) are process
      // accounting bits (acct(2): AFORK, ASU) that say how the task came
      // to be, not state: a restored task is forked by imgtool and nothing
      // can clear them.
      unsigned long flags = std::strtoul(value.c_str(), nullptr, 10) & ~0x140ul;
      value = std::to_string(flags);
    }
    fields[prefix + f.name] = value;
  }
}

const char *auxv_name(uint64_t type) {
  switch (type) {
    case 3: return "AT_PHDR";
    case 4: return "AT_PHENT";
    case 5: return "AT_PHNUM";
    case 6: return "AT_PAGESZ";
    case 7: return "AT_BASE";
    case 8: return "AT_FLAGS";
    case 9: return "AT_ENTRY";
    case 11: return "AT_UID";
    case 12: return "AT_EUID";
    case 13: return "AT_GID";
    case 14: return "AT_EGID";
    case 15: return "AT_PLATFORM";
    case 16: return "AT_HWCAP";
    case 17: return "AT_CLKTCK";
    case 23: return "AT_SECURE";
    case 25: return "AT_RANDOM";
    case 26: return "AT_HWCAP2";
    case 27: return "AT_RSEQ_FEATURE_SIZE";
    case 28: return "AT_RSEQ_ALIGN";
    case 31: return "AT_EXECFN";
    case 33: return "AT_SYSINFO_EHDR";
    case 51: return "AT_MINSIGSTKSZ";
    default: return "";
  }
}

void add_auxv(const std::string &raw, std::map<std::string, std::string> &fields) {
  for (size_t at = 0; at + 16 <= raw.size(); at += 16) {
    uint64_t type, value;
    memcpy(&type, raw.data() + at, 8);
    memcpy(&value, raw.data() + at + 8, 8);
    if (type == 0) break;
    std::ostringstream v;
    v << std::hex << value;
    fields["auxv." + std::to_string(type) + auxv_name(type)] = v.str();
  }
}

void add_threads(const std::string &proc, std::map<std::string, std::string> &fields) {
  std::vector<std::string> tids = names_in(proc + "/task");
  std::string list;
  for (const std::string &t : tids) list += (list.empty() ? "" : " ") + t;
  fields["tids"] = list;
  for (const std::string &tid : tids) {
    std::string task = proc + "/task/" + tid, prefix = "task." + tid + ".";
    std::string text;
    if (read_text(task + "/status", text)) add_status(text, prefix + "status.", true, fields);
    if (read_text(task + "/stat", text)) add_stat(text, prefix + "stat.", true, fields);
    if (read_text(task + "/children", text)) fields[prefix + "children"] = squeeze(text);
    // timerslack_ns is per thread; /proc/TID reaches any thread's.
    if (read_text("/proc/" + tid + "/timerslack_ns", text)) fields[prefix + "timerslack_ns"] = trim(text);
  }
}

}  // namespace

ProcessState capture_state(pid_t pid, const CaptureOptions &options) {
  ProcessState s;
  s.pid = pid;
  std::string proc = "/proc/" + std::to_string(pid);
  std::string text;
  if (!read_text(proc + "/status", text) || text.empty()) {
    s.error = "cannot read " + proc + "/status: " + strerror(errno);
    return s;
  }
  auto &f = s.fields;
  add_status(text, "status.", false, f);
  if (read_text(proc + "/stat", text)) add_stat(text, "stat.", false, f);
  if (read_text(proc + "/limits", text)) {
    for (const std::string &line : lines_of(text)) {
      if (line.rfind("Limit ", 0) == 0 || line.size() < 26) continue;  // the header
      f["limits." + trim(line.substr(0, 26))] = squeeze(line.substr(26));
    }
  }
  // Plain one-value files.
  for (const char *name : {"personality", "oom_score_adj", "timerslack_ns", "coredump_filter", "loginuid",
                           "sessionid", "comm", "cgroup", "timers", "attr/current"}) {
    if (read_text(proc + "/" + name, text)) f[name] = one_line(trim(text));
  }
  // "/autogroup-N nice K": N is a kernel counter, and setsid() makes a new
  // autogroup (so a restored session leader has a new N); the nice is state.
  if (read_text(proc + "/autogroup", text)) {
    size_t nice = text.find(" nice ");
    f["autogroup.nice"] = nice == std::string::npos ? trim(text) : trim(text.substr(nice + 6));
  }
  for (const char *name : {"environ", "cmdline"})
    if (read_text(proc + "/" + name, text)) f[name] = one_line(text);
  if (read_text(proc + "/auxv", text)) add_auxv(text, f);
  for (const char *name : {"cwd", "root", "exe"}) f[name] = read_link(proc + "/" + name);
  for (const std::string &ns : names_in(proc + "/ns")) f["ns." + ns] = read_link(proc + "/ns/" + ns);
  InodeNames inodes;
  add_fds(proc, f, inodes);
  add_maps(proc, options, f, inodes);
  add_threads(proc, f);
  return s;
}

namespace {

// The threads of a state that glibc has stopped half-way, with every signal
// blocked: pthread_create blocks them all (internal_signal_block_all, a raw
// rt_sigprocmask) in the creating thread around clone, and the new thread
// starts with that mask until start_thread sets the creator's mask back,
// before it calls the start routine; posix_spawn does the same around its
// child. A thread created but not yet run (under load, for longer than two
// captures: restore_snapshot's second mover, seen once as "SigBlk
// fffffffffffbfeff -> 0") is not idle, though its /proc lines do not
// change. glibc's own mask is recognisable: it holds signals 32 and 33
// (SIGCANCEL, SIGSETXID), which sigprocmask and pthread_sigmask never let
// a program block.
std::vector<std::string> threads_inside_glibc(const ProcessState &s) {
  std::vector<std::string> out;
  const std::string suffix = ".status.SigBlk";
  for (const auto &[key, value] : s.fields) {
    if (key.rfind("task.", 0) != 0 || key.size() < suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    uint64_t mask = std::strtoull(value.c_str(), nullptr, 16);
    constexpr uint64_t kGlibcInternal = (1ull << (32 - 1)) | (1ull << (33 - 1));
    if ((mask & kGlibcInternal) == kGlibcInternal) out.push_back(key + ": " + value + " (inside glibc)");
  }
  return out;
}

}  // namespace

ProcessState capture_idle_state(pid_t pid, const CaptureOptions &options, double timeout_s) {
  auto now = [] {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
  };
  double deadline = now() + timeout_s;
  ProcessState last = capture_state(pid, options);
  for (;;) {
    timespec pause{0, 20 * 1000 * 1000};
    nanosleep(&pause, nullptr);
    ProcessState next = capture_state(pid, options);
    std::vector<std::string> changed = diff_states(last, next);
    if (!next.error.empty()) return next;
    // Two equal captures, and no thread stopped inside glibc (above).
    std::vector<std::string> inside = threads_inside_glibc(next);
    if (changed.empty() && inside.empty()) return next;
    changed.insert(changed.end(), inside.begin(), inside.end());
    if (now() > deadline) {
      next.error = "process " + std::to_string(pid) + " did not become idle within " +
                   std::to_string(int(timeout_s)) + " s; still changing:";
      for (const std::string &c : changed) next.error += "\n  " + c;
      return next;
    }
    last = std::move(next);
  }
}

std::vector<std::string> diff_states(const ProcessState &before, const ProcessState &after) {
  std::vector<std::string> out;
  if (before.error != after.error)
    out.push_back("capture: " + (before.error.empty() ? "ok" : before.error) + " -> " +
                  (after.error.empty() ? "ok" : after.error));
  auto b = before.fields.begin(), a = after.fields.begin();
  static const std::string absent = "(absent)";
  while (b != before.fields.end() || a != after.fields.end()) {
    if (a == after.fields.end() || (b != before.fields.end() && b->first < a->first)) {
      out.push_back(b->first + ": " + b->second + " -> " + absent);
      ++b;
    } else if (b == before.fields.end() || a->first < b->first) {
      out.push_back(a->first + ": " + absent + " -> " + a->second);
      ++a;
    } else {
      if (b->second != a->second) out.push_back(b->first + ": " + b->second + " -> " + a->second);
      ++b;
      ++a;
    }
  }
  return out;
}

}  // namespace ckpt::test
