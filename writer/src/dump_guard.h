// The dump guard: a process of ours that undoes what a dump changed in the
// target tree (a dirty tracker armed, a snapshot copy made, an fd to the
// snapshot cgroup) when the dump fails or imgtool dies, kill -9 included,
// and does so *before anyone can see imgtool gone* (DECISIONS.md 168).
//
// The guard is a fork of imgtool that PTRACE_SEIZEs imgtool. A dead
// tracee's zombie is reported only to its tracer; its real parent (a
// shell, a test, a job scheduler) sees it only once the tracer has
// reaped it (kernel/exit.c, wait_task_zombie: "a zombie ptracee is only
// visible to its ptracer"). So the guard waits for imgtool's exit with
// WNOWAIT, undoes what the journal says, and only then reaps it, which
// hands the zombie to the real parent. Imgtool's signals pass through the
// guard (each is a signal-delivery stop it resumes with the signal);
// SIGCHLD, which every ptrace stop of the target sends imgtool, is blocked
// while the guard runs so that the freeze costs no extra round trips.
//
// What imgtool did is written to the guard as a journal (a pipe) *before*
// it is done, so that a death between the two still finds it.
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>

#include <ckpt/img/expected.h>

namespace ckpt::writer {

class DumpGuard {
 public:
  /// Forks the guard and waits until it traces imgtool. Fails (one line)
  /// where it cannot: imgtool already traced (by gdb, strace), fork
  /// refused. Nothing is left behind then.
  static img::Expected<std::unique_ptr<DumpGuard>> start();

  /// Without commit(): asks the guard to undo the journal now (the tree
  /// must be released by then) and waits for it; with: lets it go.
  ~DumpGuard();
  DumpGuard(const DumpGuard &) = delete;
  DumpGuard &operator=(const DumpGuard &) = delete;

  /// About to arm a tracker in pid; `had_one`: an earlier dump's tracker
  /// was there (and is closed by this dump). Undone: a process that had
  /// none is left with none (every tracker fd in it is closed); one that
  /// had one keeps the new one, which no image names.
  void arming(pid_t pid, bool had_one);
  /// Arming in pid is over and its tracker fds are marked (or none was
  /// made), and pid may run again (a pre-armed process, DECISIONS 260):
  /// undone, only marked trackers are closed, never a userfaultfd the
  /// program made since, until arming() is journalled again.
  void arming_settled(pid_t pid);
  /// The snapshot cgroup: undone, it is removed (its members killed).
  void snapshot_cgroup(const std::string &path);
  /// About to open the snapshot cgroup inside pid: undone, any fd of pid
  /// on the cgroup is closed.
  void opening_cgroup_in(pid_t pid);
  /// pid has the snapshot copy `copy` as a child: undone, the copy is
  /// killed and reaped inside pid (if still its child).
  void copy_made(pid_t pid, pid_t copy);
  /// About to map a probe page in pid (process_settings.cc: a 4 KiB
  /// PROT_NONE MAP_SHARED|MAP_ANONYMOUS mapping, unmapped at once).
  /// Undone: such a mapping pid did not have before is unmapped.
  void probing(pid_t pid);
  /// The guard of the dump running now, or null (the in-process and
  /// guard-less paths).
  static DumpGuard *active();
  /// The image is in place: the trackers stay (copies are still undone,
  /// but the dump reaped them already).
  void commit();

 private:
  DumpGuard() = default;
  void note(const std::string &line);
  pid_t pid_ = 0;
  int journal_ = -1;  ///< write end
  bool committed_ = false;
  bool chld_was_blocked_ = false;
};

}  // namespace ckpt::writer
