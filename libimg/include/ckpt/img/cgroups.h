// The cgroups a process is in (TaskRecord::cgroup, the text of
// /proc/PID/cgroup) and the settings of those cgroups (TaskRecord::
// cgroup_settings): shared by the writer, which captures them, and the
// reader, which finds the cgroups here or makes them again.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <ckpt/img/expected.h>

namespace ckpt::img {

/// A /proc or cgroupfs file read whole (st_size says 0 or 4096 there, not
/// its length).
Expected<std::string> read_kernel_file(const char *path);

/// One line of /proc/PID/cgroup: "ID:CONTROLLERS:PATH" ("0::PATH" for
/// cgroup v2; "N:name=systemd:PATH" for a named v1 hierarchy).
struct CgroupLine {
  std::string controllers, path;
};
std::vector<CgroupLine> parse_cgroups(std::string_view text);

/// The directory of cgroup `path` of the hierarchy with `controllers`
/// ("" = cgroup v2) as mounted here, from /proc/self/mountinfo: a cgroup2
/// mount, or a v1 mount whose super options name every controller.
Expected<std::string> cgroup_directory(const std::string &controllers, const std::string &path);

/// One controller setting of a cgroup: its interface file and value.
struct CgroupSetting {
  std::string controllers;  ///< of its hierarchy, as in CgroupLine
  std::string file;         ///< "pids.max", "memory.limit_in_bytes"...
  std::string value;        ///< as read, without the trailing newline
};
/// The interface files captured where a cgroup has them, in the order
/// restore writes them (a v1 cpuset takes no task before its mems and cpus
/// are set; a cfs quota must fit the period).
const std::vector<std::string> &cgroup_setting_files();
/// TaskRecord::cgroup_settings: one "CONTROLLERS\tFILE\tVALUE" line each.
std::string cgroup_settings_text(const std::vector<CgroupSetting> &settings);
std::vector<CgroupSetting> parse_cgroup_settings(std::string_view text);

}  // namespace ckpt::img
