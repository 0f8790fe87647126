// Whole-process state as /proc shows it, for comparing a process before a
// checkpoint with its restored copy field by field.
//
// capture_state() reads what a user of the process can observe from
// outside: /proc/PID/{status,stat,maps+smaps VmFlags,limits,fd,fdinfo,
// personality,oom_score_adj,timerslack_ns,coredump_filter,loginuid,
// sessionid,cwd,root,exe,environ,cmdline,auxv,cgroup,ns/*,timers,autogroup}
// and per thread /proc/PID/task/TID/{status,stat,comm,children}. Lines that
// change while a process merely exists (context switches, resident pages,
// CPU times) are left out; process_state.cc says for each one why.
//
// Kernel objects that a restore must re-create (pipes, sockets, memfds,
// unlinked files, anon inodes) cannot keep their inode numbers; those
// numbers are replaced by "#N", N counting distinct inodes in the order
// fds then mappings show them, so sharing (two fds of one pipe, an fd and a
// mapping of one memfd) is still compared while the numbers are not.
#pragma once

#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

namespace ckpt::test {

struct ProcessState {
  pid_t pid = -1;
  /// Non-empty when the process could not be read (gone, no permission).
  std::string error;
  /// "status.CapEff" -> "000001ffffffffff", "maps.7f..-7f.." -> "r-xp ...",
  /// "task.1234.status.SigBlk" -> ...; one entry per compared field.
  std::map<std::string, std::string> fields;
};

struct CaptureOptions {
  /// Private mappings of this file are shown as anonymous memory (restore
  /// --lazy maps the image file where the process had anonymous memory).
  std::string anonymous_backing;
};

/// Reads the state of process pid once (see the header comment).
ProcessState capture_state(pid_t pid, const CaptureOptions &options = {});

/// Captures until two captures in a row are equal (the process is idle:
/// e.g. polling for a file), at most timeout_s; then returns that state.
/// On timeout, error says so and lists the fields that kept changing.
ProcessState capture_idle_state(pid_t pid, const CaptureOptions &options = {}, double timeout_s = 20);

/// Field-by-field differences, one line each, sorted by field:
/// "status.CapEff: 000001ffffffffff -> 000001ffffdfffff",
/// "maps.7f00-7f01: (absent) -> rwxp 00000000 00:00 0 [rd wr ex]".
/// A capture error is a difference too.
std::vector<std::string> diff_states(const ProcessState &before, const ProcessState &after);

}  // namespace ckpt::test
