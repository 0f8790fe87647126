#include "process_settings.h"

#include <ckpt/img/cgroups.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <string>
#include <vector>
#include <sys/prctl.h>
#include <sys/stat.h>
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


static std::vector<std::string> split_words(const std::string &s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

static Status write_file_text(const std::string &path, const std::string &text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return make_error("%s: %s", path.c_str(), strerror(errno));
  ssize_t n = write(fd, text.data(), text.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) return make_error("%s: %s", path.c_str(), strerror(n < 0 ? err : EIO));
  return {};
}

static Status write_own(const char *name, const std::string &value) {
  return write_file_text(std::string("/proc/self/") + name, value);
}

// Makes the missing cgroup `dir` (and any missing folder above it, up to
// the hierarchy's mount) with the settings the image holds for its
// hierarchy. On cgroup v2 each parent must first hand the settings'
// controllers down (cgroup.subtree_control). A cgroup another process of
// the tree made meanwhile (EEXIST) is joined as it is. Cgroups made here
// stay when the process exits, as cgroups made by hand do.
static Status make_cgroup(const CgroupLine &want, const std::string &dir, const std::vector<CgroupSetting> &settings) {
  std::vector<const CgroupSetting *> mine;
  std::string controllers;  // v2: "+memory +pids"
  for (const CgroupSetting &c : settings) {
    if (c.controllers != want.controllers) continue;
    mine.push_back(&c);
    // cgroup.* files are the core's (cgroup.max.depth...), no controller's.
    if (c.file.rfind("cgroup.", 0) == 0) continue;
    std::string ctl = "+" + c.file.substr(0, c.file.find('.'));
    if (want.controllers.empty() && controllers.find(ctl) == std::string::npos)
      controllers += (controllers.empty() ? "" : " ") + ctl;
  }
  // The mount point: dir without want.path's components.
  std::string base = dir.substr(0, dir.size() - want.path.size());
  std::string at = base;
  bool made = false;  // the cgroup itself, by this process
  size_t from = 1;
  while (from <= want.path.size()) {
    size_t slash = want.path.find('/', from);
    if (slash == std::string::npos) slash = want.path.size();
    std::string parent = at;
    at = base + want.path.substr(0, slash);
    from = slash + 1;
    if (access(at.c_str(), F_OK) == 0) continue;
    for (const std::string &one : split_words(controllers))
      CKPT_TRY(write_file_text(parent + "/cgroup.subtree_control", one));
    if (mkdir(at.c_str(), 0755) == 0)
      made = slash == want.path.size();
    else if (errno != EEXIST)
      return make_error("mkdir %s: %s", at.c_str(), strerror(errno));
  }
  // Only the process that made the cgroup gives it its settings.
  if (!made) return {};
  for (const CgroupSetting *c : mine) {
    // Only what differs from a new cgroup's default is written: defaults
    // are not always accepted back as printed (v1's unlimited memory limit
    // prints as PAGE_COUNTER_MAX pages in bytes), and an empty v1 cpuset
    // is inherited from the parent as the kernel fills it.
    std::string path = dir + "/" + c->file;
    auto now = read_kernel_file(path.c_str());
    if (!now) continue;  // not in this kernel's or hierarchy's files
    std::string current = now.take();
    while (!current.empty() && current.back() == '\n') current.pop_back();
    if (c->value.empty() || current == c->value) continue;
    CKPT_TRY(write_file_text(path, c->value));
  }
  return {};
}

// Moves this process into each cgroup of the image that differs from the
// one it is in (inherited from imgtool), making a missing one with the
// settings the image has for it (decision 120).
static Status restore_cgroups(std::string_view image_text, std::string_view settings_text) {
  if (image_text.empty()) return {};
  auto file = read_kernel_file("/proc/self/cgroup");
  if (!file) return file.error();
  std::string own_text = file.take();
  std::vector<CgroupLine> own = parse_cgroups(own_text);
  std::vector<CgroupSetting> settings = parse_cgroup_settings(settings_text);
  for (const CgroupLine &want : parse_cgroups(image_text)) {
    std::string label = want.controllers.empty() ? "cgroup2" : want.controllers;
    auto here = std::find_if(own.begin(), own.end(), [&](const CgroupLine &o) { return o.controllers == want.controllers; });
    if (here == own.end())
      return make_error("cannot restore cgroup %s:%s: that hierarchy does not exist here", label.c_str(), want.path.c_str());
    if (here->path == want.path) continue;
    auto dir = cgroup_directory(want.controllers, want.path);
    if (!dir) return make_error("cannot restore cgroup %s:%s: %s", label.c_str(), want.path.c_str(), dir.error().message().c_str());
    if (access(dir->c_str(), F_OK) != 0)
      if (Status s = make_cgroup(want, *dir, settings); !s)
        return make_error("cannot make cgroup %s:%s again: %s", label.c_str(), want.path.c_str(), s.error().message().c_str());
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

Status restore_process_settings(const TaskRecord &t, std::string_view cgroup, std::string_view cgroup_settings) {
  if (!(t.settings & kTaskSettingsCaptured)) return {};
  CKPT_TRY(restore_cgroups(cgroup, cgroup_settings));
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
