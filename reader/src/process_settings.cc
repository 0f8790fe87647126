#include "process_settings.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <string>
#include <vector>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

// linux/membarrier.h: the registration commands, which are also the bits
// MEMBARRIER_CMD_GET_REGISTRATIONS reports.
constexpr u32 kMembarrierRegisterGlobalExpedited = 1u << 2;
constexpr u32 kMembarrierRegisterPrivateExpedited = 1u << 4;
constexpr u32 kMembarrierRegisterPrivateExpeditedSyncCore = 1u << 6;
constexpr u32 kMembarrierRegisterPrivateExpeditedRseq = 1u << 8;
constexpr u32 kMembarrierRegistrations = kMembarrierRegisterGlobalExpedited | kMembarrierRegisterPrivateExpedited |
                                         kMembarrierRegisterPrivateExpeditedSyncCore |
                                         kMembarrierRegisterPrivateExpeditedRseq;
// linux/prctl.h (Linux 6.18+).
constexpr unsigned long kThpDisableExceptAdvised = 1ul << 1;

// The number in /proc/self/NAME, or `fallback` when the file is absent.
static long read_own(const char *name, long fallback) {
  std::string path = std::string("/proc/self/") + name;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fallback;
  char buf[32] = {};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n > 0 ? std::strtol(buf, nullptr, 10) : fallback;
}

static Status write_own(const char *name, const std::string &value) {
  std::string path = std::string("/proc/self/") + name;
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return make_error("%s: %s", path.c_str(), strerror(errno));
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(value.size())) return make_error("%s: %s", path.c_str(), strerror(n < 0 ? err : EIO));
  return {};
}

// One line of /proc/PID/cgroup: "ID:CONTROLLERS:PATH" ("0::PATH" for
// cgroup v2; "N:name=systemd:PATH" for a named v1 hierarchy).
struct CgroupLine {
  std::string controllers, path;
};

static std::vector<CgroupLine> parse_cgroups(std::string_view text) {
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

static std::vector<std::string> split_commas(const std::string &s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) out.push_back(part);
  return out;
}

// A /proc file read whole (its size is not known in advance).
static Expected<std::string> read_proc_file(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("%s: %s", path, strerror(errno));
  std::string text;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, size_t(n));
  close(fd);
  return text;
}

// The directory of cgroup `path` of the hierarchy with `controllers`
// ("" = cgroup v2) as mounted here, from /proc/self/mountinfo: a cgroup2
// mount, or a v1 mount whose super options name every controller.
static Expected<std::string> cgroup_directory(const std::string &controllers, const std::string &path) {
  auto file = read_proc_file("/proc/self/mountinfo");
  if (!file) return file.error();
  std::string text = file.take();
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> wanted = split_commas(controllers);
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
      std::vector<std::string> opts = split_commas(super);
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

// Moves this process into each cgroup of the image that differs from the
// one it is in (inherited from imgtool). Missing cgroups are not created
// (docs/DECISIONS.md): the restore fails naming the first.
static Status restore_cgroups(std::string_view image_text) {
  if (image_text.empty()) return {};
  auto file = read_proc_file("/proc/self/cgroup");
  if (!file) return file.error();
  std::string own_text = file.take();
  std::vector<CgroupLine> own = parse_cgroups(own_text);
  for (const CgroupLine &want : parse_cgroups(image_text)) {
    std::string label = want.controllers.empty() ? "cgroup2" : want.controllers;
    auto here = std::find_if(own.begin(), own.end(), [&](const CgroupLine &o) { return o.controllers == want.controllers; });
    if (here == own.end())
      return make_error("cannot restore cgroup %s:%s: that hierarchy does not exist here", label.c_str(), want.path.c_str());
    if (here->path == want.path) continue;
    auto dir = cgroup_directory(want.controllers, want.path);
    if (!dir) return make_error("cannot restore cgroup %s:%s: %s", label.c_str(), want.path.c_str(), dir.error().message().c_str());
    std::string procs = *dir + "/cgroup.procs";
    int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    // "0": the writing process itself.
    if (fd < 0 || write(fd, "0", 1) != 1) {
      int err = errno;
      if (fd >= 0) close(fd);
      return make_error("cannot restore cgroup %s:%s: %s: %s", label.c_str(), want.path.c_str(), procs.c_str(), strerror(err));
    }
    close(fd);
  }
  return {};
}

Status restore_process_settings(const TaskRecord &t, std::string_view cgroup) {
  if (!(t.settings & kTaskSettingsCaptured)) return {};
  CKPT_TRY(restore_cgroups(cgroup));
  // Lowering it below the oom_score_adj_min this process inherited needs
  // CAP_SYS_RESOURCE (EACCES otherwise), so only a change is written.
  if (read_own("oom_score_adj", 0) != t.oom_score_adj)
    if (Status s = write_own("oom_score_adj", std::to_string(t.oom_score_adj)); !s)
      return make_error("cannot restore oom_score_adj %d: %s", t.oom_score_adj, s.error().message().c_str());
  // Setting a loginuid that is already set needs CAP_AUDIT_CONTROL and is
  // refused outright when audit's loginuid_immutable feature is on (EPERM);
  // a fresh login (unset, -1) may set it once. Writing it also starts a new
  // audit sessionid, which cannot be chosen (docs/DECISIONS.md).
  if (static_cast<u32>(read_own("loginuid", 0xffffffffl)) != t.loginuid)
    if (Status s = write_own("loginuid", std::to_string(t.loginuid)); !s)
      return make_error("cannot restore loginuid %d: %s", static_cast<int>(t.loginuid), s.error().message().c_str());
  if (prctl(PR_SET_CHILD_SUBREAPER, (t.settings & kTaskChildSubreaper) ? 1 : 0, 0, 0, 0) < 0)
    return make_error("cannot restore PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
  if (t.settings & kTaskThpDisabled) {
    unsigned long how = (t.settings & kTaskThpExceptAdvised) ? kThpDisableExceptAdvised : 0;
    if (prctl(PR_SET_THP_DISABLE, 1, how, 0, 0) < 0)
      return make_error("cannot restore PR_SET_THP_DISABLE%s: %s", how ? " except advised" : "", strerror(errno));
  }
  // Registrations are per mm, and this process's mm is the one the image
  // is restored into (the restorer replaces mappings, not the mm).
  if (t.membarrier & ~kMembarrierRegistrations)
    return make_error("cannot restore membarrier registrations 0x%x: unknown bits 0x%x", t.membarrier,
                      t.membarrier & ~kMembarrierRegistrations);
  for (u32 bit = 1; bit <= kMembarrierRegisterPrivateExpeditedRseq; bit <<= 1)
    if ((t.membarrier & bit) && syscall(SYS_membarrier, bit, 0, 0) < 0)
      return make_error("cannot restore the membarrier registration 0x%x: %s", bit, strerror(errno));
  return {};
}

}  // namespace ckpt::reader
