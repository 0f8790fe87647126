// The fd and mapping fields of a process's captured state (process_state.h):
// what each fd and mapping is, with the inode numbers of objects a restore
// re-creates renamed "#N" so that sharing is compared but numbers are not.
#include "process_state_detail.h"

#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <set>
#include <sstream>
#include <sys/stat.h>

namespace ckpt::test::state_detail {
namespace {

// Objects a restore re-creates (a new pipe, socket, memfd, anon inode; an
// unlinked file's content in a new inode): their inode numbers are new.
bool recreated_object(const std::string &target) {
  static const char *const kinds[] = {"pipe:", "socket:", "anon_inode:", "/memfd:", "/SYSV"};
  for (const char *k : kinds)
    if (target.rfind(k, 0) == 0) return true;
  static const std::string deleted = " (deleted)";
  return target.size() > deleted.size() && target.compare(target.size() - deleted.size(), deleted.size(), deleted) == 0;
}

// "pipe:[1234]" -> 1234; 0 when the target has no bracketed number.
unsigned long bracketed_inode(const std::string &target) {
  size_t open = target.find(":[");
  if (open == std::string::npos || target.back() != ']') return 0;
  return std::strtoul(target.c_str() + open + 2, nullptr, 10);
}

// Rewrites "ino:HEX" tokens (epoll targets) that name re-created objects.
std::string rename_hex_inodes(const std::string &value, const InodeNames &inodes) {
  std::istringstream ss(value);
  std::string out;
  for (std::string tok; ss >> tok;) {
    if (tok.rfind("ino:", 0) == 0) {
      unsigned long ino = std::strtoul(tok.c_str() + 4, nullptr, 16);
      if (inodes.known(ino)) tok = "ino:" + inodes.name(ino);
    }
    out += (out.empty() ? "" : " ") + tok;
  }
  return out;
}

// fdinfo lines left out: a timerfd's time left and its expiry count grow
// while the process is idle; an eventfd's id is a kernel-wide counter that a
// new eventfd cannot have back.
const std::set<std::string> kVolatileFdinfo = {"it_value", "ticks", "eventfd-id"};

struct Mapping {
  std::string range, perms, offset, dev, path, extra;
  unsigned long inode = 0;
};

// smaps: the maps line of every mapping plus the flags that madvise, mlock
// and mmap flags set (VmFlags) and the protection key.
std::vector<Mapping> read_mappings(const std::string &smaps) {
  std::vector<Mapping> maps;
  for (const std::string &line : lines_of(smaps)) {
    size_t colon = line.find(':');
    std::string head = colon == std::string::npos ? line : line.substr(0, colon);
    if (head == "VmFlags" || head == "ProtectionKey") {
      if (!maps.empty()) maps.back().extra += " " + head + ": " + squeeze(line.substr(colon + 1));
      continue;
    }
    // A mapping line starts "start-end perms": anything else is a counter.
    size_t dash = line.find('-');
    if (dash == std::string::npos || dash == 0 || line.find(' ') < dash) continue;
    if (line.find_first_not_of("0123456789abcdef") != dash) continue;
    std::istringstream ss(line);
    Mapping m;
    ss >> m.range >> m.perms >> m.offset >> m.dev >> m.inode;
    std::string rest;
    std::getline(ss, rest);
    m.path = trim(rest);
    maps.push_back(m);
  }
  return maps;
}

// NULs (environ, cmdline) as "\0" and newlines (cgroup, timers) as " | ":
// a field is one line of a difference report.
// Quirk: the kernel merges adjacent anonymous VMAs only when their
// anon_vma and history allow it (e.g. separate mmaps that were written to
// stay separate), and names a VMA "[heap]" when it overlaps the brk area,
// so one memory layout shows as one line or several. Adjacent mappings that
// differ only in such a split are merged here before comparing.
std::vector<Mapping> merge_split_mappings(const std::vector<Mapping> &maps) {
  auto bounds = [](const std::string &range, unsigned long *start, unsigned long *end) {
    *start = std::strtoul(range.c_str(), nullptr, 16);
    *end = std::strtoul(range.c_str() + range.find('-') + 1, nullptr, 16);
  };
  std::vector<Mapping> out;
  for (const Mapping &m : maps) {
    if (!out.empty()) {
      Mapping &prev = out.back();
      unsigned long ps, pe, ms, me;
      bounds(prev.range, &ps, &pe);
      bounds(m.range, &ms, &me);
      bool anonymous = prev.inode == 0 && m.inode == 0 && prev.dev == "00:00" && m.dev == "00:00";
      bool heap_or_unnamed = (prev.path.empty() || prev.path == "[heap]") && (m.path.empty() || m.path == "[heap]");
      if (pe == ms && anonymous && heap_or_unnamed && prev.perms == m.perms && prev.extra == m.extra) {
        std::ostringstream r;
        r << std::hex << ps << "-" << me;
        prev.range = r.str();
        if (m.path == "[heap]") prev.path = m.path;
        continue;
      }
    }
    out.push_back(m);
  }
  return out;
}

}  // namespace

void add_fds(const std::string &proc, std::map<std::string, std::string> &fields, InodeNames &inodes) {
  std::vector<std::string> fds = names_in(proc + "/fd");
  std::map<std::string, std::string> links;
  for (const std::string &fd : fds) {
    std::string target = read_link(proc + "/fd/" + fd);
    if (recreated_object(target)) {
      std::string info;
      read_text(proc + "/fdinfo/" + fd, info);
      // The dirty tracker a dump leaves behind and its epoch memfd (both
      // marked O_APPEND, DECISIONS 126 and 189) are not restored:
      // numbering their inodes would shift the numbers of every object
      // seen after them.
      bool appended = false;
      for (const std::string &line : lines_of(info))
        if (line.rfind("flags:", 0) == 0) appended = std::strtoul(line.c_str() + 6, nullptr, 8) & O_APPEND;
      const char *tracker = !appended                                           ? nullptr
                            : target == "anon_inode:[userfaultfd]"              ? "#tracker"
                            : target == "/memfd:ckpt-dirty-tracker (deleted)" ? "#tracker-epoch"
                                                                                : nullptr;
      for (const std::string &line : lines_of(info)) {
        if (line.rfind("ino:", 0) != 0) continue;
        unsigned long ino = std::strtoul(line.c_str() + 4, nullptr, 10);
        if (tracker) inodes.see_as(ino, tracker);
        else inodes.see(ino);
      }
    }
    links[fd] = target;
  }
  for (const std::string &fd : fds) {
    std::string key = "fd." + fd + ".";
    std::string target = links[fd];
    if (unsigned long ino = bracketed_inode(target); ino && inodes.known(ino))
      target = target.substr(0, target.find(":[") + 2) + inodes.name(ino) + "]";
    fields[key + "link"] = target;
    std::string info;
    if (!read_text(proc + "/fdinfo/" + fd, info)) continue;  // closed meanwhile: the link says so
    for (const std::string &line : lines_of(info)) {
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = trim(line.substr(0, colon));
      std::string value = squeeze(line.substr(colon + 1));
      if (kVolatileFdinfo.count(name)) continue;
      // "tfd: 5 events: 19 ..." (epoll), "inotify wd:1 ino:..": one entry
      // per target, keyed by its first token.
      if (value.find(':') != std::string::npos && value.find(' ') != std::string::npos) {
        name += " " + value.substr(0, value.find(' '));
        value = rename_hex_inodes(value.substr(value.find(' ') + 1), inodes);
      } else if (name == "ino") {
        unsigned long ino = std::strtoul(value.c_str(), nullptr, 10);
        if (inodes.known(ino)) value = inodes.name(ino);
      }
      fields[key + name] = value;
    }
  }
}

void add_maps(const std::string &proc, const CaptureOptions &options, std::map<std::string, std::string> &fields,
              InodeNames &inodes) {
  std::string smaps;
  if (!read_text(proc + "/smaps", smaps)) {
    fields["maps"] = "<unreadable>";
    return;
  }
  std::vector<Mapping> maps = read_mappings(smaps);
  if (!options.anonymous_backing.empty()) {
    for (Mapping &m : maps) {
      if (m.path != options.anonymous_backing || m.perms.back() != 'p') continue;
      m.offset = "00000000";
      m.dev = "00:00";
      m.inode = 0;
      m.path.clear();
    }
  }
  maps = merge_split_mappings(maps);
  for (const Mapping &m : maps)
    if (m.inode && recreated_object(m.path)) inodes.see(m.inode);
  for (const Mapping &m : maps) {
    // dev:inode of a file that exists by name must be that same file; a
    // re-created object's inode is compared as "#N" (see the header).
    std::string inode = recreated_object(m.path) ? inodes.name(m.inode) : std::to_string(m.inode);
    fields["maps." + m.range] = m.perms + " " + m.offset + " " + m.dev + " " + inode + " " + m.path + m.extra;
    // The mode of a re-created file object (a memfd, a deleted file, a
    // SysV segment): restore makes it anew, so its mode is its doing too.
    // map_files opens only with CAP_SYS_ADMIN/CAP_CHECKPOINT_RESTORE; an
    // unprivileged capture reads "?" both times.
    if (recreated_object(m.path) && m.path[0] == '/') {
      struct stat st;
      std::string link = proc + "/map_files/" + m.range;
      char mode[16] = "?";
      if (stat(link.c_str(), &st) == 0) std::snprintf(mode, sizeof mode, "0%o", unsigned(st.st_mode & 07777));
      fields["maps." + m.range + ".mode"] = mode;
    }
  }
}

}  // namespace ckpt::test::state_detail
