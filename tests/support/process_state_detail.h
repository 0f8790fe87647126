// The parts of process_state.cc's capture shared between its files: /proc
// text helpers (process_state.cc) and the fd and mapping fields with their
// inode renaming (process_state_fds.cc). Private to tests/support.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "process_state.h"

namespace ckpt::test::state_detail {

bool read_text(const std::string &path, std::string &out);
std::string read_link(const std::string &path);
std::vector<std::string> lines_of(const std::string &text);
std::string trim(const std::string &s);
// Runs of blanks become one space: column padding is not state.
std::string squeeze(const std::string &s);
// A directory's entries but . and ..; numeric names (fds, tids) in numeric
// order.
std::vector<std::string> names_in(const std::string &dir);
// NULs as "\0" and newlines as " | ": a file's content as one value.
std::string one_line(const std::string &s);

// Inode numbers of re-created objects -> "#1", "#2", ... by first sight.
class InodeNames {
 public:
  void see(unsigned long ino) {
    if (!names_.count(ino)) names_[ino] = "#" + std::to_string(++numbered_);
  }
  // Named apart from the numbering: an object one side lacks (the dump's
  // dirty tracker) must not shift the numbers of every object after it.
  void see_as(unsigned long ino, const std::string &name) { names_.emplace(ino, name); }
  bool known(unsigned long ino) const { return names_.count(ino) != 0; }
  std::string name(unsigned long ino) const {
    auto it = names_.find(ino);
    return it == names_.end() ? std::to_string(ino) : it->second;
  }

 private:
  std::map<unsigned long, std::string> names_;
  unsigned numbered_ = 0;
};

// fd.N, fdinfo.N.* fields of the process at `proc` ("/proc/PID"), naming
// re-created objects' inodes in `inodes` as it first sees them.
void add_fds(const std::string &proc, std::map<std::string, std::string> &fields, InodeNames &inodes);
// maps.* fields: every mapping with its VmFlags, split mappings merged.
void add_maps(const std::string &proc, const CaptureOptions &options, std::map<std::string, std::string> &fields,
              InodeNames &inodes);

}  // namespace ckpt::test::state_detail
