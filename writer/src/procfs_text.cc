// Text helpers for the /proc readers. See procfs_text.h.
#include "procfs_text.h"

#include <algorithm>
#include <charconv>
#include <dirent.h>

namespace ckpt::writer {

using img::make_error;

namespace {

/// Cap for read_file(): far above any /proc text file we read whole
/// (status, stat, auxv, cmdline, timers, children), small enough that a
/// runaway file cannot eat the dumper's memory.
constexpr size_t kMaxProcFileBytes = size_t(64) << 20;

/// Cap for readlink(): the kernel's d_path never exceeds PATH_MAX, but the
/// buffer grows until the result fits, so bound the growth.
constexpr size_t kMaxLinkBytes = size_t(1) << 20;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

}  // namespace

namespace procfs_text {

std::string proc_file(pid_t pid, pid_t tid, const char *leaf) {
  std::string p = "/proc/" + std::to_string(pid);
  if (tid != 0) p += "/task/" + std::to_string(tid);
  p += "/";
  p += leaf;
  return p;
}

bool parse_u64(std::string_view s, int base, u64 &out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool parse_i64(std::string_view s, i64 &out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 10);
  return ec == std::errc() && ptr == s.data() + s.size();
}

bool parse_i32(std::string_view s, int &out) {
  i64 v = 0;
  if (!parse_i64(s, v) || v < INT32_MIN || v > INT32_MAX) return false;
  out = static_cast<int>(v);
  return true;
}

bool parse_u32(std::string_view s, int base, u32 &out) {
  u64 v = 0;
  if (!parse_u64(s, base, v) || v > UINT32_MAX) return false;
  out = static_cast<u32>(v);
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

/// Splits on runs of spaces/tabs; empty tokens never appear.
std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

/// "Key:<spaces>value" → key, trimmed value. False for lines without ':'.
bool split_key(std::string_view line, std::string_view &key, std::string_view &value) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  key = line.substr(0, colon);
  value = trim(line.substr(colon + 1));
  return true;
}

/// Parses whitespace-separated decimal pids, appended to out (unsorted).
bool parse_pid_list(std::string_view text, std::vector<pid_t> &out) {
  for (std::string_view tok : split_ws(text)) {
    int v = 0;
    if (!parse_i32(tok, v) || v <= 0) return false;
    out.push_back(v);
  }
  return true;
}

/// Numeric entries of a /proc directory (task ids, fd numbers), ascending.
Expected<std::vector<pid_t>> list_numeric_dir(const std::string &path) {
  int dfd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return make_error("open %s: %s", path.c_str(), strerror(errno));
  DIR *dir = fdopendir(dfd);
  if (!dir) {
    int e = errno;
    close(dfd);
    return make_error("fdopendir %s: %s", path.c_str(), strerror(e));
  }
  std::vector<pid_t> out;
  for (;;) {
    errno = 0;
    dirent *d = readdir(dir);
    if (!d) break;
    int v = 0;
    if (parse_i32(d->d_name, v) && v >= 0) out.push_back(v);
  }
  int e = errno;
  closedir(dir);
  if (e != 0) return make_error("readdir %s: %s", path.c_str(), strerror(e));
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace procfs_text

using namespace procfs_text;

Expected<std::string> read_file(const std::string &path) {
  std::string out;
  CKPT_TRY(for_each_chunk(path, kMaxProcFileBytes, [&](std::string_view chunk) {
    out.append(chunk);
    return img::Status::ok();
  }));
  return out;
}

Expected<std::string> read_link(const std::string &path) {
  // readlink() truncates silently, so grow the buffer until the result
  // leaves room to spare.
  for (size_t cap = 256; cap <= kMaxLinkBytes; cap *= 2) {
    std::string buf(cap, '\0');
    ssize_t n = readlink(path.c_str(), buf.data(), cap);
    if (n < 0) return make_error("readlink %s: %s", path.c_str(), strerror(errno));
    if (size_t(n) < cap) {
      buf.resize(size_t(n));
      return buf;
    }
  }
  return make_error("readlink %s: target longer than %zu bytes", path.c_str(), kMaxLinkBytes);
}

}  // namespace ckpt::writer
