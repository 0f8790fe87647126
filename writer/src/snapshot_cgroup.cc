#include "snapshot_cgroup.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sstream>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "procfs.h"

namespace ckpt::writer {

using namespace img;

std::string cgroup2_mount() {
  auto info = read_file("/proc/self/mountinfo");
  if (!info) return {};
  std::istringstream in(*info);
  std::string line;
  while (std::getline(in, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream f(line.substr(0, dash));
    std::string id, parent, dev, root, point;
    if (f >> id >> parent >> dev >> root >> point && root == "/") return point;
  }
  return {};
}

static bool write_text(const std::string &path, const char *text) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = write(fd, text, strlen(text)) == ssize_t(strlen(text));
  close(fd);
  return ok;
}

// Whether target shares our namespace of this kind (/proc/PID/ns/KIND).
static bool same_namespace(pid_t target, const char *kind) {
  struct stat ours, theirs;
  return stat(("/proc/self/ns/" + std::string(kind)).c_str(), &ours) == 0 &&
         stat(("/proc/" + std::to_string(target) + "/ns/" + kind).c_str(), &theirs) == 0 && ours.st_ino == theirs.st_ino;
}

// Makes <cgroup2 mount>/ckpt-snapshot-<pid namespace inode>-<our pid>,
// frozen. The cgroup hierarchy is shared by every pid namespace (a
// container, `unshare --pid`), where our pid alone can name another live
// imgtool too: named by the pid only, an imgtool took the cgroup of an
// imgtool with the same pid in another namespace for its own leftover and
// emptied it, killing the copies that dump was reading ("end of memory",
// decision 251). The pair is unique among live processes: a namespace's
// inode is reused only once every process in it is gone, so a cgroup with
// our name is a leftover of an imgtool that is gone (its guard too).
static Expected<std::string> make_cgroup_dir(const std::function<void(const std::string &)> &about_to_make) {
  std::string mount = cgroup2_mount();
  if (mount.empty()) return make_error("no cgroup v2 hierarchy is mounted");
  struct stat ns;
  if (stat("/proc/self/ns/pid", &ns) < 0) return make_error("cannot stat /proc/self/ns/pid: %s", strerror(errno));
  std::string dir = mount + "/" + snapshot_cgroup_name(ns.st_ino, getpid());
  remove_cgroup(dir);  // a leftover of an earlier imgtool with our pid here
  if (about_to_make) about_to_make(dir);
  if (mkdir(dir.c_str(), 0700) < 0) return make_error("cannot create cgroup %s: %s", dir.c_str(), strerror(errno));
  if (!write_text(dir + "/cgroup.freeze", "1")) {
    int e = errno;
    rmdir(dir.c_str());
    return make_error("cannot freeze cgroup %s: %s", dir.c_str(), strerror(e));
  }
  return dir;
}

std::string snapshot_cgroup_name(ino_t pid_namespace_inode, pid_t pid) {
  return "ckpt-snapshot-" + std::to_string(pid_namespace_inode) + "-" + std::to_string(pid);
}

Expected<std::string> make_frozen_cgroup(const std::vector<pid_t> &targets,
                                         const std::function<void(const std::string &)> &about_to_make,
                                         std::string premade) {
  // The cgroup's path is opened by the target, and the pid clone3 returns
  // there is the copy's pid in the target's pid namespace: both must be
  // ours for what we do with them.
  for (pid_t target : targets) {
    const char *other = !same_namespace(target, "mnt") ? "mount" : !same_namespace(target, "pid") ? "pid" : nullptr;
    if (other) {
      if (!premade.empty()) remove_cgroup(premade);
      return make_error("process %d is in another %s namespace", target, other);
    }
  }
  if (!premade.empty()) return premade;
  return make_cgroup_dir(about_to_make);
}

void PreparedCgroup::make(const std::function<void(const std::string &)> &about_to_make) {
  auto dir = make_cgroup_dir(about_to_make);
  if (dir) path_ = dir.take();
}

PreparedCgroup::~PreparedCgroup() {
  if (!path_.empty()) remove_cgroup(path_);
}

void remove_cgroup(const std::string &cgroup) {
  if (rmdir(cgroup.c_str()) == 0 || errno == ENOENT) return;
  // Something is still in it: cgroup.kill (5.14+) kills even frozen tasks.
  write_text(cgroup + "/cgroup.kill", "1");
  for (int i = 0; i < 500; i++) {
    if (rmdir(cgroup.c_str()) == 0 || errno != EBUSY) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace ckpt::writer
