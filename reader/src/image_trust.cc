#include "image_trust.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <set>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace ckpt::reader {

using namespace img;

namespace {

// Who besides us and root could have written the file.
struct Writer {
  bool anyone = false;    ///< writable by others: no one in particular
  uid_t uid = 0;          ///< otherwise this user (when `other`)
  bool other = false;
  std::string why;        ///< "FILE is owned by user 1000"
};

// The file's owner and the owners of every folder up to /: each can
// replace what the path names. Group- or other-writable folders without
// the sticky bit let anyone do so; with it (as /tmp) only the owners of
// the names in them.
Expected<Writer> possible_writer(const std::string &path) {
  char real[PATH_MAX];
  if (!realpath(path.c_str(), real)) return make_error("%s: %s", path.c_str(), strerror(errno));
  uid_t self = geteuid();
  Writer w;
  auto owned_by_other = [&](const struct stat &st, const std::string &what) {
    if (st.st_uid == 0 || st.st_uid == self || w.other) return;
    w.other = true;
    w.uid = st.st_uid;
    w.why = what + " is owned by user " + std::to_string(st.st_uid);
  };
  struct stat st;
  if (stat(real, &st) < 0) return make_error("%s: %s", real, strerror(errno));
  owned_by_other(st, real);
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    w.anyone = true;
    w.why = std::string(real) + " is writable by other users";
    return w;
  }
  std::string dir = real;
  while (dir.size() > 1) {
    dir = dir.substr(0, dir.rfind('/'));
    if (dir.empty()) dir = "/";
    if (stat(dir.c_str(), &st) < 0) return make_error("%s: %s", dir.c_str(), strerror(errno));
    owned_by_other(st, "its folder " + dir);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
      w.anyone = true;
      w.why = "its folder " + dir + " is writable by other users";
      return w;
    }
  }
  return w;
}

// The lines of a colon-separated database (/etc/passwd, /etc/group), each
// split into its fields. Read directly, not through NSS: the exec form's
// launcher is linked statically, where NSS is not available.
std::vector<std::vector<std::string>> read_colon_file(const char *path) {
  std::vector<std::vector<std::string>> out;
  FILE *f = std::fopen(path, "re");
  if (!f) return out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, f)) {
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    std::vector<std::string> fields;
    size_t at = 0;
    for (size_t colon; (colon = line.find(':', at)) != std::string::npos; at = colon + 1)
      fields.push_back(line.substr(at, colon - at));
    fields.push_back(line.substr(at));
    out.push_back(std::move(fields));
  }
  std::fclose(f);
  return out;
}

// The groups user `uid` is in (its passwd entry's and the group file's),
// plus `file_gid`; only `file_gid` when the user has no passwd entry.
std::set<u32> groups_of(uid_t uid, gid_t file_gid) {
  std::set<u32> out{file_gid};
  std::string name;
  for (const auto &f : read_colon_file("/etc/passwd"))
    if (f.size() >= 4 && f[2] == std::to_string(uid)) {
      name = f[0];
      out.insert(static_cast<u32>(std::strtoul(f[3].c_str(), nullptr, 10)));
      break;
    }
  if (name.empty()) return out;
  for (const auto &f : read_colon_file("/etc/group")) {
    if (f.size() < 4) continue;
    std::string members = "," + f[3] + ",";
    if (members.find("," + name + ",") != std::string::npos)
      out.insert(static_cast<u32>(std::strtoul(f[2].c_str(), nullptr, 10)));
  }
  return out;
}

bool grants_privilege(const std::string &file) {
  struct stat st;
  if (stat(file.c_str(), &st) < 0) return false;
  if (st.st_mode & (S_ISUID | S_ISGID)) return (st.st_mode & S_IXUSR) || (st.st_mode & S_IXGRP);
  return getxattr(file.c_str(), "security.capability", nullptr, 0) > 0;
}

// What in `v` user `uid` (groups `groups`) could not have had.
std::string exceeds(const CkptView &v, uid_t uid, const std::set<u32> &groups) {
  char line[256];
  for (const TaskRecord &t : v.tasks.records) {
    for (int i = 0; i < 4; i++)
      if (t.uid[i] != uid) {
        std::snprintf(line, sizeof line, "process %d runs as user %u", t.pid, t.uid[i]);
        return line;
      }
    for (int i = 0; i < 4; i++)
      if (!groups.count(t.gid[i])) {
        std::snprintf(line, sizeof line, "process %d runs as group %u", t.pid, t.gid[i]);
        return line;
      }
    if (auto g = v.tasks.blob(t.groups); g)
      for (size_t i = 0; i + 4 <= g->size(); i += 4) {
        u32 gid;
        std::memcpy(&gid, g->data() + i, 4);
        if (!groups.count(gid)) {
          std::snprintf(line, sizeof line, "process %d is in group %u", t.pid, gid);
          return line;
        }
      }
    if (t.cap_permitted | t.cap_effective | t.cap_inheritable | t.cap_ambient) {
      std::snprintf(line, sizeof line, "process %d holds capabilities (permitted 0x%llx)", t.pid,
                    (unsigned long long)t.cap_permitted);
      return line;
    }
  }
  for (const ThreadRecord &t : v.threads.records) {
    if (!(t.flags & kThreadPrivileges)) continue;
    if (t.cap_permitted | t.cap_effective | t.cap_inheritable | t.cap_ambient) {
      std::snprintf(line, sizeof line, "thread %d holds capabilities (permitted 0x%llx)", t.tid,
                    (unsigned long long)t.cap_permitted);
      return line;
    }
    if (t.securebits) {
      std::snprintf(line, sizeof line, "thread %d has securebits 0x%x", t.tid, t.securebits);
      return line;
    }
  }
  for (const VmaRecord &m : v.vmas.records) {
    std::string file(v.vmas.str_or_empty(m.path));
    if (!file.empty() && file[0] == '/' && grants_privilege(file))
      return "it maps " + file + " (setuid, setgid or file capabilities)";
  }
  return "";
}

}  // namespace

Status check_image_trust(const std::string &path, const std::vector<const CkptView *> &views) {
  auto writer = possible_writer(path);
  if (!writer) return writer.error();
  if (!writer->anyone && !writer->other) return {};
  const char *hint = " (restore --trust-image if you trust it)";
  if (writer->anyone)
    return make_error("refusing to restore %s: %s, so anyone could have written what it runs%s", path.c_str(),
                      writer->why.c_str(), hint);
  struct stat st;
  gid_t file_gid = stat(path.c_str(), &st) == 0 ? st.st_gid : 0;
  std::set<u32> groups = groups_of(writer->uid, file_gid);
  for (const CkptView *v : views) {
    std::string what = exceeds(*v, writer->uid, groups);
    if (!what.empty())
      return make_error("refusing to restore %s: %s, and %s, more than that user holds%s", path.c_str(),
                        writer->why.c_str(), what.c_str(), hint);
  }
  return {};
}

}  // namespace ckpt::reader
