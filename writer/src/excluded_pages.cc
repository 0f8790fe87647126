#include "excluded_pages.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "procfs.h"

namespace ckpt::writer {

using namespace img;

// The table's layout is docs/FORMAT.md's "Excluded pages"; libckpt writes it.
static constexpr char kTableLink[] = "/memfd:ckpt-exclude (deleted)";
static constexpr char kTableMagic[8] = {'C', 'K', 'P', 'T', 'E', 'X', 'C', 'L'};
static constexpr u32 kTableVersion = 1;
static constexpr u64 kTableMaxBytes = 64ull << 20;
static constexpr char kAnonName[] = "[anon:ckpt-exclude]";

static Status read_table(pid_t pid, int fd, ExcludedRanges &out) {
  std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  int t = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (t < 0) return make_error("pid %d fd %d: cannot open the ckpt-exclude table: %s", pid, fd, strerror(errno));
  std::vector<u8> bytes;
  u8 buf[65536];
  for (;;) {
    ssize_t n = pread(t, buf, sizeof buf, static_cast<off_t>(bytes.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(t);
      return make_error("pid %d fd %d: reading the ckpt-exclude table: %s", pid, fd, strerror(e));
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), buf, buf + n);
    if (bytes.size() > kTableMaxBytes) break;
  }
  close(t);
  u32 version = 0, count = 0;
  if (bytes.size() >= 16) {
    std::memcpy(&version, bytes.data() + 8, 4);
    std::memcpy(&count, bytes.data() + 12, 4);
  }
  if (bytes.size() < 16 || std::memcmp(bytes.data(), kTableMagic, 8) != 0 || version != kTableVersion ||
      bytes.size() < 16 + u64(count) * 16)
    return make_error("pid %d fd %d: the ckpt-exclude table is damaged (%zu bytes)", pid, fd, bytes.size());
  for (u32 i = 0; i < count; i++) {
    u64 start, end;
    std::memcpy(&start, bytes.data() + 16 + i * 16, 8);
    std::memcpy(&end, bytes.data() + 24 + i * 16, 8);
    if (start % kPageSize || end % kPageSize || end <= start)
      return make_error("pid %d fd %d: ckpt-exclude entry %u [0x%llx, 0x%llx) is not whole pages", pid, fd, i,
                        (unsigned long long)start, (unsigned long long)end);
    out.push_back({start, end});
  }
  return {};
}

Expected<ExcludedRanges> read_excluded_ranges(pid_t pid, const std::vector<MapEntry> &maps) {
  ExcludedRanges ranges;
  for (const MapEntry &m : maps)
    if (m.path == kAnonName) ranges.push_back({m.start, m.end});
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR *d = opendir(dir.c_str());
  if (!d) return make_error("cannot list %s: %s", dir.c_str(), strerror(errno));
  Status s;
  while (dirent *e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    auto link = read_link(dir + "/" + e->d_name);
    if (!link || *link != kTableLink) continue;  // an fd closed meanwhile is no table
    s = read_table(pid, std::atoi(e->d_name), ranges);
    if (!s) break;
  }
  closedir(d);
  if (!s) return s.error();
  std::sort(ranges.begin(), ranges.end());
  ExcludedRanges merged;
  for (const auto &r : ranges) {
    if (!merged.empty() && r.first <= merged.back().second)
      merged.back().second = std::max(merged.back().second, r.second);
    else
      merged.push_back(r);
  }
  return merged;
}

static void append_run(std::vector<PageRun> &runs, u64 start, u64 len, PageSource src) {
  if (len == 0) return;
  if (!runs.empty() && runs.back().source == src && runs.back().start + runs.back().length == start)
    runs.back().length += len;
  else
    runs.push_back({start, len, src});
}

void apply_exclusions(std::vector<VmaPlan> &plan, const ExcludedRanges &ranges) {
  if (ranges.empty()) return;
  for (VmaPlan &v : plan) {
    bool private_anon = (v.kind == VmaKind::Anon || v.kind == VmaKind::Heap || v.kind == VmaKind::Stack) &&
                        !(v.flags & kVmaShared);
    if (!private_anon) continue;
    auto first = std::lower_bound(ranges.begin(), ranges.end(), std::pair<u64, u64>{v.map.start, 0},
                                  [](const auto &a, const auto &b) { return a.second <= b.first; });
    if (first == ranges.end() || first->first >= v.map.end) continue;
    std::vector<PageRun> out;
    for (const PageRun &r : v.runs) {
      u64 at = r.start, end = r.start + r.length;
      for (auto it = first; it != ranges.end() && it->first < end && at < end; ++it) {
        if (it->second <= at) continue;
        u64 cut_start = std::max(at, it->first), cut_end = std::min(end, it->second);
        append_run(out, at, cut_start - at, r.source);
        append_run(out, cut_start, cut_end - cut_start, PageSource::Zero);
        at = cut_end;
      }
      append_run(out, at, end - at, r.source);
    }
    v.runs = std::move(out);
  }
}

}  // namespace ckpt::writer
