// Text helpers for the /proc readers (procfs.cc, procfs_limits.cc): number
// and field parsing, chunked reads of files the kernel generates per read().
// Private to the writer; the readers' contract is procfs.h.
#pragma once

#include "procfs.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

namespace ckpt::writer::procfs_text {

/// Cap for streaming smaps: each VMA prints ~1.3 KiB and vm.max_map_count
/// (65530 by default) can be raised, so this is larger than read_file()'s
/// cap, but smaps is parsed line by line and never held whole.
constexpr size_t kMaxSmapsBytes = size_t(1) << 30;

/// "/proc/PID/LEAF", or "/proc/PID/task/TID/LEAF" when tid is not 0.
std::string proc_file(pid_t pid, pid_t tid, const char *leaf);

/// Whole-string number parsers: false unless every character is used.
bool parse_u64(std::string_view s, int base, u64 &out);
bool parse_i64(std::string_view s, i64 &out);
bool parse_i32(std::string_view s, int &out);
bool parse_u32(std::string_view s, int base, u32 &out);

/// s without leading and trailing spaces, tabs and newlines.
std::string_view trim(std::string_view s);
/// Splits on runs of spaces/tabs; empty tokens never appear.
std::vector<std::string_view> split_ws(std::string_view s);
/// "Key:<spaces>value" → key, trimmed value. False for lines without ':'.
bool split_key(std::string_view line, std::string_view &key, std::string_view &value);
/// Parses whitespace-separated decimal pids, appended to out (unsorted).
bool parse_pid_list(std::string_view text, std::vector<pid_t> &out);
/// Numeric entries of a /proc directory (task ids, fd numbers), ascending.
Expected<std::vector<pid_t>> list_numeric_dir(const std::string &path);

/// Calls fn(line) for every line of text held whole (the last one may lack
/// its '\n'); stops at and returns the first error fn returns.
template <typename Fn>
img::Status for_each_text_line(std::string_view text, Fn fn) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    CKPT_TRY(fn(line));
  }
  return img::Status::ok();
}

/// Calls fn(chunk) with what each read() returns, to EOF: /proc files
/// report st_size 0 and are generated per read() call, so they are read
/// until EOF rather than by their size. Fails past `cap` bytes in all.
template <typename Fn>
img::Status for_each_chunk(const std::string &path, size_t cap, Fn fn) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return img::make_error("open %s: %s", path.c_str(), strerror(errno));
  char buf[65536];
  size_t total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return img::make_error("read %s: %s", path.c_str(), strerror(e));
    }
    if (n == 0) break;
    total += size_t(n);
    if (total > cap) {
      close(fd);
      return img::make_error("read %s: larger than the %zu byte cap", path.c_str(), cap);
    }
    img::Status st = fn(std::string_view(buf, size_t(n)));
    if (!st) {
      close(fd);
      return st;
    }
  }
  close(fd);
  return img::Status::ok();
}

/// Calls fn(line) for every '\n'-terminated line (and a final unterminated
/// one), reading in chunks so that a large file is never held whole.
template <typename Fn>
img::Status for_each_line(const std::string &path, size_t cap, Fn fn) {
  std::string pending;
  CKPT_TRY(for_each_chunk(path, cap, [&](std::string_view chunk) -> img::Status {
    pending.append(chunk);
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
      CKPT_TRY(fn(std::string_view(pending).substr(start, nl - start)));
    pending.erase(0, start);
    return img::Status::ok();
  }));
  if (!pending.empty()) return fn(std::string_view(pending));
  return img::Status::ok();
}

}  // namespace ckpt::writer::procfs_text
