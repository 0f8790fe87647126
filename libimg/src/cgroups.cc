// Cgroup text and directories (cgroups.h).
#include <ckpt/img/cgroups.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <unistd.h>

namespace ckpt::img {

namespace {

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string part;
  while (std::getline(in, part, sep)) out.push_back(part);
  return out;
}


}  // namespace

Expected<std::string> read_kernel_file(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("%s: %s", path, strerror(errno));
  std::string text;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, size_t(n));
  close(fd);
  return text;
}

std::vector<CgroupLine> parse_cgroups(std::string_view text) {
  std::vector<CgroupLine> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    out.push_back({line.substr(a + 1, b - a - 1), line.substr(b + 1)});
  }
  return out;
}

Expected<std::string> cgroup_directory(const std::string &controllers, const std::string &path) {
  auto file = read_kernel_file("/proc/self/mountinfo");
  if (!file) return file.error();
  std::string text = file.take();
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> wanted = split(controllers, ',');
  while (std::getline(in, line)) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS"
    std::istringstream f(line);
    std::string id, parent, devno, root, mountpoint;
    f >> id >> parent >> devno >> root >> mountpoint;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype, source, super;
    tail >> fstype >> source >> super;
    if (controllers.empty() ? fstype != "cgroup2" : fstype != "cgroup") continue;
    if (!controllers.empty()) {
      std::vector<std::string> opts = split(super, ',');
      bool all = true;
      for (const std::string &c : wanted) all = all && std::find(opts.begin(), opts.end(), c) != opts.end();
      if (!all) continue;
    }
    // A mount of a sub-tree (ROOT != "/") shows only the paths below it.
    if (root == "/") return mountpoint + path;
    if (path.rfind(root, 0) == 0 && (path.size() == root.size() || path[root.size()] == '/'))
      return mountpoint + path.substr(root.size());
  }
  return make_error("no %s hierarchy holding it is mounted here", controllers.empty() ? "cgroup2" : "cgroup v1");
}

const std::vector<std::string> &cgroup_setting_files() {
  static const std::vector<std::string> files = {
      // cgroup v1 and v2
      "cpuset.mems", "cpuset.cpus", "pids.max",
      // cgroup v1
      "memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.swappiness", "cpu.shares",
      "cpu.cfs_period_us", "cpu.cfs_quota_us",
      // cgroup v2
      "memory.min", "memory.low", "memory.high", "memory.max", "memory.swap.max", "cpu.weight", "cpu.max",
      // cgroup v2's own limits (in every v2 cgroup, whatever controllers it
      // has), memory.oom.group, and the hugetlb controller's limits (x86-64's
      // two huge page sizes; v1's names too)
      "cgroup.max.descendants", "cgroup.max.depth", "memory.oom.group", "hugetlb.2MB.max", "hugetlb.1GB.max",
      "hugetlb.2MB.rsvd.max", "hugetlb.1GB.rsvd.max", "hugetlb.2MB.limit_in_bytes", "hugetlb.1GB.limit_in_bytes"};
  return files;
}

std::string cgroup_settings_text(const std::vector<CgroupSetting> &settings) {
  std::string out;
  for (const CgroupSetting &s : settings) out += s.controllers + "\t" + s.file + "\t" + s.value + "\n";
  return out;
}

std::vector<CgroupSetting> parse_cgroup_settings(std::string_view text) {
  std::vector<CgroupSetting> out;
  for (const std::string &line : split(std::string(text), '\n')) {
    std::vector<std::string> f = split(line, '\t');
    if (f.size() == 2) f.push_back("");
    if (f.size() == 3) out.push_back({f[0], f[1], f[2]});
  }
  return out;
}

}  // namespace ckpt::img
