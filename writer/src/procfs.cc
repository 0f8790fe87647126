// Readers of /proc/PID/{smaps,stat,status,task,auxv,...}. See procfs.h
// (limits, timers and the robust list: procfs_limits.cc).
//
// Everything parses text the kernel formats in fs/proc/*.c; each parser
// names the format it expects and fails with one line naming the pid and
// file when the text does not match, rather than guessing.
#include "procfs_text.h"

#include <algorithm>
#include <cstring>
#include <sys/mman.h>

namespace ckpt::writer {

using img::make_error;
using namespace procfs_text;

namespace {

/// A smaps VMA header: "start-end perms offset major:minor inode [path]".
/// Told apart from "Key: value" lines by shape, not by position, because
/// the set of keys changes between kernel versions.
bool parse_map_header(std::string_view line, MapEntry &e) {
  auto toks = split_ws(line);
  if (toks.size() < 5) return false;
  std::string_view range = toks[0], perms = toks[1];
  size_t dash = range.find('-');
  if (dash == std::string_view::npos || perms.size() != 4) return false;
  if (!parse_u64(range.substr(0, dash), 16, e.start)) return false;
  if (!parse_u64(range.substr(dash + 1), 16, e.end)) return false;
  if ((perms[0] != 'r' && perms[0] != '-') || (perms[1] != 'w' && perms[1] != '-') ||
      (perms[2] != 'x' && perms[2] != '-') || (perms[3] != 's' && perms[3] != 'p'))
    return false;
  e.prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
           (perms[2] == 'x' ? PROT_EXEC : 0);
  e.shared = perms[3] == 's';
  if (!parse_u64(toks[2], 16, e.offset)) return false;
  size_t colon = toks[3].find(':');
  if (colon == std::string_view::npos) return false;
  if (!parse_u32(toks[3].substr(0, colon), 16, e.dev_major)) return false;
  if (!parse_u32(toks[3].substr(colon + 1), 16, e.dev_minor)) return false;
  if (!parse_u64(toks[4], 10, e.ino)) return false;
  // The path starts after the whitespace that pads the inode column and runs
  // to the end of the line, spaces and all. The kernel escapes '\n' in it
  // as "\012" (seq_file_path), so a line never splits a path; we keep the
  // text exactly as printed.
  const char *after_ino = toks[4].data() + toks[4].size();
  std::string_view rest = line.substr(size_t(after_ino - line.data()));
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  e.path.assign(rest);
  return true;
}

}  // namespace

bool MapEntry::has_flag(const char *code) const {
  return std::find(vmflags.begin(), vmflags.end(), code) != vmflags.end();
}

namespace {

/// One pass over /proc/PID/smaps. Errors name the file; the caller adds the pid.
Expected<std::vector<MapEntry>> read_maps_once(const std::string &path) {
  std::vector<MapEntry> maps;
  size_t lineno = 0;
  img::Status st = for_each_line(path, kMaxSmapsBytes, [&](std::string_view line) -> img::Status {
    ++lineno;
    MapEntry e;
    if (parse_map_header(line, e)) {
      maps.push_back(std::move(e));
      return img::Status::ok();
    }
    std::string_view key, value;
    if (!split_key(line, key, value))
      return make_error("%s line %zu is neither a mapping nor \"Key: value\"", path.c_str(),
                        lineno);
    if (maps.empty())
      return make_error("%s line %zu: \"%.*s\" before any mapping", path.c_str(), lineno,
                        int(key.size()), key.data());
    if (key == "Anonymous" || key == "Swap" || key == "Rss" || key == "KernelPageSize") {
      // "Anonymous:        12 kB"
      u64 &field = key == "Anonymous" ? maps.back().anonymous_kb
                   : key == "Swap"    ? maps.back().swap_kb
                   : key == "Rss"     ? maps.back().rss_kb
                                      : maps.back().kernel_page_kb;
      auto toks = split_ws(value);
      if (toks.empty() || !parse_u64(toks[0], 10, field))
        return make_error("%s line %zu: bad %.*s value", path.c_str(), lineno, int(key.size()), key.data());
    } else if (key == "VmFlags") {
      for (std::string_view f : split_ws(value)) maps.back().vmflags.emplace_back(f);
    }
    return img::Status::ok();
  });
  if (!st) return st.error();
  return maps;
}

/// Index of the first mapping that starts before the previous one ends, or
/// 0 when the list is ascending and disjoint.
size_t first_out_of_order(const std::vector<MapEntry> &maps) {
  for (size_t i = 1; i < maps.size(); ++i)
    if (maps[i].start < maps[i - 1].end) return i;
  return 0;
}

}  // namespace

Expected<std::vector<MapEntry>> read_maps(pid_t pid, bool brief) {
  // /proc/PID/maps prints the same header lines as smaps without walking
  // any page table: what a reader of addresses, protections and paths
  // needs, at no cost per page.
  std::string path = proc_file(pid, 0, brief ? "maps" : "smaps");
  // smaps is generated a page at a time: each read() takes and drops the
  // mm lock, so a mapping that changes between two read() calls can be
  // shown twice or out of order (a VMA that grew is printed again from its
  // start). A stopped target cannot change, but the reader's own process
  // can (its allocations between reads), so check the order and re-read.
  constexpr int kAttempts = 8;
  size_t bad = 0;
  u64 bad_addr = 0;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto maps = read_maps_once(path);
    if (!maps) return maps.error().context("pid " + std::to_string(pid));
    bad = first_out_of_order(*maps);
    if (bad == 0) return maps;
    bad_addr = (*maps)[bad].start;
  }
  return make_error("pid %d: %s changed while being read %d times (mapping at %#llx out of order)",
                    pid, path.c_str(), kAttempts, (unsigned long long)bad_addr);
}

Expected<ProcStat> read_stat(pid_t pid, pid_t tid) {
  std::string path = proc_file(pid, tid, "stat");
  auto text = read_file(path);
  if (!text) return text.error().context("pid " + std::to_string(pid));
  const std::string &s = *text;
  // comm may contain spaces, '(' and ')' (prctl(PR_SET_NAME) accepts any
  // bytes) and is printed raw, so it ends at the LAST ')'; nothing after it
  // can contain one.
  size_t open_paren = s.find('(');
  size_t close_paren = s.rfind(')');
  if (open_paren == std::string::npos || close_paren == std::string::npos ||
      close_paren < open_paren)
    return make_error("pid %d: %s has no \"(comm)\"", pid, path.c_str());
  ProcStat ps;
  ps.comm = s.substr(open_paren + 1, close_paren - open_paren - 1);
  // Field 3 (state) is the first token after ") ", so token i is field i+3.
  auto toks = split_ws(std::string_view(s).substr(close_paren + 1));
  constexpr size_t kLastField = 51;  // env_end, present since Linux 3.5
  if (toks.size() < kLastField - 2)
    return make_error("pid %d: %s has %zu fields after comm, need %zu", pid, path.c_str(),
                      toks.size(), kLastField - 2);
  auto field = [&](int n) { return toks[size_t(n - 3)]; };
  if (field(3).size() != 1) return make_error("pid %d: %s: bad state field", pid, path.c_str());
  ps.state = field(3)[0];

  bool ok = true;
  auto get_i32 = [&](int n, int &out) { ok = ok && parse_i32(field(n), out); };
  auto get_i64 = [&](int n, i64 &out) { ok = ok && parse_i64(field(n), out); };
  auto get_u64 = [&](int n, u64 &out) { ok = ok && parse_u64(field(n), 10, out); };
  get_i32(4, ps.ppid);
  get_i32(5, ps.pgrp);
  get_i32(6, ps.session);
  get_i32(7, ps.tty_nr);
  get_i32(8, ps.tpgid);
  get_u64(9, ps.flags);
  get_u64(14, ps.utime);
  get_u64(15, ps.stime);
  get_i64(16, ps.cutime);
  get_i64(17, ps.cstime);
  get_i64(19, ps.nice);
  get_i64(20, ps.num_threads);
  get_u64(22, ps.start_time);
  // The kernel prints 0 for the mm fields below when the reader lacks
  // ptrace access (or the task has no mm, e.g. a zombie); as root we see
  // the real values.
  get_u64(26, ps.start_code);
  get_u64(27, ps.end_code);
  get_u64(28, ps.start_stack);
  get_i32(38, ps.exit_signal);
  get_u64(45, ps.start_data);
  get_u64(46, ps.end_data);
  get_u64(47, ps.start_brk);
  get_u64(48, ps.arg_start);
  get_u64(49, ps.arg_end);
  get_u64(50, ps.env_start);
  get_u64(51, ps.env_end);
  if (toks.size() >= 52 - 2) get_i32(52, ps.exit_code);  // Linux 3.5 on
  if (!ok) return make_error("pid %d: %s: a numeric field does not parse", pid, path.c_str());
  return ps;
}

Expected<ProcStatus> read_status(pid_t pid, pid_t tid) {
  std::string path = proc_file(pid, tid, "status");
  auto text = read_file(path);
  if (!text) return text.error().context("pid " + std::to_string(pid));
  ProcStatus ps;
  // Umask is optional: the kernel omits the line when the task has no
  // fs_struct (a zombie or a task in exit). Every other key is required.
  enum : unsigned {
    kUid = 1u << 0, kGid = 1u << 1, kGroups = 1u << 2, kCapInh = 1u << 3, kCapPrm = 1u << 4,
    kCapEff = 1u << 5, kCapBnd = 1u << 6, kCapAmb = 1u << 7, kTgid = 1u << 8,
    kTracer = 1u << 9, kSigPnd = 1u << 10, kShdPnd = 1u << 11, kSigBlk = 1u << 12,
    kSigIgn = 1u << 13, kSigCgt = 1u << 14, kAll = (1u << 15) - 1,
  };
  unsigned seen = 0;
  CKPT_TRY(for_each_text_line(*text, [&](std::string_view line) -> img::Status {
    std::string_view key, value;
    if (!split_key(line, key, value)) return img::Status::ok();
    bool ok = true;
    auto four = [&](u32 (&out)[4], unsigned bit) {
      auto toks = split_ws(value);
      ok = toks.size() == 4;
      for (size_t i = 0; ok && i < 4; ++i) ok = parse_u32(toks[i], 10, out[i]);
      seen |= bit;
    };
    auto hex = [&](u64 &out, unsigned bit) {
      ok = parse_u64(value, 16, out);
      seen |= bit;
    };
    auto dec = [&](pid_t &out, unsigned bit) {
      ok = parse_i32(value, out);
      seen |= bit;
    };
    if (key == "Uid") four(ps.uid, kUid);
    else if (key == "Gid") four(ps.gid, kGid);
    else if (key == "Groups") {
      // "Groups:\t10 20 " (trailing space), or empty.
      for (std::string_view tok : split_ws(value)) {
        u32 g = 0;
        if (!(ok = parse_u32(tok, 10, g))) break;
        ps.groups.push_back(g);
      }
      seen |= kGroups;
    } else if (key == "CapInh") hex(ps.cap_inh, kCapInh);
    else if (key == "CapPrm") hex(ps.cap_prm, kCapPrm);
    else if (key == "CapEff") hex(ps.cap_eff, kCapEff);
    else if (key == "CapBnd") hex(ps.cap_bnd, kCapBnd);
    else if (key == "CapAmb") hex(ps.cap_amb, kCapAmb);
    else if (key == "Umask") ok = parse_u32(value, 8, ps.umask);  // "%#04o": "0022"
    else if (key == "Tgid") dec(ps.tgid, kTgid);
    else if (key == "TracerPid") dec(ps.tracer_pid, kTracer);
    else if (key == "SigPnd") hex(ps.sig_pnd, kSigPnd);
    else if (key == "ShdPnd") hex(ps.shd_pnd, kShdPnd);
    else if (key == "SigBlk") hex(ps.sig_blk, kSigBlk);
    else if (key == "SigIgn") hex(ps.sig_ign, kSigIgn);
    else if (key == "SigCgt") hex(ps.sig_cgt, kSigCgt);
    // Optional: a kernel without CONFIG_SECCOMP prints neither Seccomp
    // line, which means mode 0 and no filters.
    else if (key == "NoNewPrivs") ok = parse_u32(value, 10, ps.no_new_privs);
    else if (key == "Seccomp") ok = parse_u32(value, 10, ps.seccomp_mode);
    else if (key == "Seccomp_filters") ok = parse_u32(value, 10, ps.seccomp_filters);
    // Optional: a task without a files_struct (in exit) has no FDSize.
    else if (key == "FDSize") ok = parse_u32(value, 10, ps.fd_table_size);
    // Optional: a task without an mm (a zombie, a kernel thread) has no
    // Vm* lines. "VmLck:\t       0 kB".
    else if (key == "VmLck") {
      auto toks = split_ws(value);
      u64 kb = 0;
      ok = !toks.empty() && parse_u64(toks[0], 10, kb);
      ps.vm_lck_kb = kb;
    }
    if (!ok)
      return make_error("pid %d: %s: bad value for %.*s: \"%.*s\"", pid, path.c_str(),
                        int(key.size()), key.data(), int(value.size()), value.data());
    return img::Status::ok();
  }));
  if (seen != kAll)
    return make_error("pid %d: %s lacks expected lines (found mask %#x of %#x)", pid,
                      path.c_str(), seen, unsigned(kAll));
  return ps;
}

Expected<std::vector<pid_t>> list_threads(pid_t pid) {
  auto tids = list_numeric_dir("/proc/" + std::to_string(pid) + "/task");
  if (!tids) return tids.error().context("pid " + std::to_string(pid));
  return tids;
}

Expected<std::vector<ChildOf>> list_children_by_thread(pid_t pid) {
  auto tids = list_threads(pid);
  if (!tids) return tids.error();
  // Each thread's "children" lists only the children it forked itself
  // (needs CONFIG_PROC_CHILDREN). The kernel documents the list as
  // reliable only while the children cannot exit or fork, i.e. frozen.
  std::vector<ChildOf> out;
  for (pid_t tid : *tids) {
    std::string path = proc_file(pid, tid, "children");
    auto text = read_file(path);
    if (!text) {
      // The thread exited between listing and reading: it has no children.
      if (access(proc_file(pid, tid, "").c_str(), F_OK) != 0) continue;
      return text.error().context("pid " + std::to_string(pid));
    }
    std::vector<pid_t> kids;
    if (!parse_pid_list(*text, kids)) return make_error("pid %d: %s: not a list of pids", pid, path.c_str());
    for (pid_t k : kids) out.push_back({k, tid});
  }
  // Kept in the kernel's order, not sorted by pid: "children" walks the
  // thread's list of children, in the order they were forked (or adopted),
  // and the restore forks them in the image's order, which is what the
  // restored lists show. Once the pid counter wraps (pid_max is 32768 on
  // many machines), a later child has a lower pid: sorting by pid restored
  // such a tree with its children listed in another order.
  return out;
}

Expected<std::vector<pid_t>> list_children(pid_t pid) {
  auto by_thread = list_children_by_thread(pid);
  if (!by_thread) return by_thread.error();
  // A child has one parent thread: the lists do not overlap.
  std::vector<pid_t> out;
  for (const ChildOf &c : *by_thread) out.push_back(c.child);
  return out;
}

Expected<std::vector<u64>> read_auxv(pid_t pid) {
  std::string path = proc_file(pid, 0, "auxv");
  auto text = read_file(path);
  if (!text) return text.error().context("pid " + std::to_string(pid));
  // The kernel prints the saved vector up to and including the AT_NULL pair.
  if (text->size() % 16 != 0 || text->empty())
    return make_error("pid %d: %s: %zu bytes is not a whole number of (type, value) pairs", pid,
                      path.c_str(), text->size());
  std::vector<u64> words(text->size() / 8);
  std::memcpy(words.data(), text->data(), text->size());
  return words;
}

Expected<std::string> read_cmdline(pid_t pid) {
  auto text = read_file(proc_file(pid, 0, "cmdline"));
  if (!text) return text.error().context("pid " + std::to_string(pid));
  return text;
}

Expected<u32> read_personality(pid_t pid) {
  std::string path = proc_file(pid, 0, "personality");
  auto text = read_file(path);
  if (!text) return text.error().context("pid " + std::to_string(pid));
  u32 v = 0;
  if (!parse_u32(trim(*text), 16, v))  // "%08x\n"
    return make_error("pid %d: %s: not hex: \"%s\"", pid, path.c_str(), text->c_str());
  return v;
}

std::string map_files_path(pid_t pid, const MapEntry &m) {
  char link[96];
  std::snprintf(link, sizeof link, "/proc/%d/map_files/%llx-%llx", int(pid), (unsigned long long)m.start,
                (unsigned long long)m.end);
  return link;
}

int open_mem(pid_t pid) { return open(proc_file(pid, 0, "mem").c_str(), O_RDONLY | O_CLOEXEC); }

size_t read_mem_at(int mem, u64 at, img::u8 *into, size_t len) {
  for (size_t k = 0; k < len;) {
    ssize_t n = pread(mem, into + k, len - k, at + k);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = 0;
      return k;
    }
    k += size_t(n);
  }
  return len;
}

}  // namespace ckpt::writer
