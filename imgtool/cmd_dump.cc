#include <atomic>
#include <csignal>
#include <cstdio>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>

#include <ckpt/writer/dump.h>

#include "cli.h"
#include "launcher_bytes.h"

namespace ckpt::tool {

static const char kHelp[] =
    "usage: imgtool dump --pid PID -o FILE [--kill | --leave-running]\n"
    "\n"
    "Checkpoints process PID, all its threads and all its descendants (zombies\n"
    "included) into FILE, an ELF core file that gdb opens like a gcore of PID\n"
    "and that 'imgtool restore' brings back ('imgtool gdb FILE --pid N' and\n"
    "'imgtool extract' show the other processes). The tree keeps running (or\n"
    "stays stopped, if it was), as after gcore, but for the two descriptors of\n"
    "the dirty-page tracker each process is left with (see below).\n"
    "\n"
    "  --pid PID         the process to checkpoint\n"
    "  -o, --output FILE where to write the image (0600); '-' streams it to\n"
    "                    standard output. FILE appears only once complete.\n"
    "  --kill            kill the tree once the image is complete and in place\n"
    "  --sync            return (and --kill) only once the image is on disk\n"
    "                    (fsync of FILE and its folder); without it FILE is\n"
    "                    complete and in place when dump returns, its data\n"
    "                    possibly still in the page cache, as after gcore\n"
    "  --stats           on success, print one line on stderr:\n"
    "                    'dump stats: frozen S s, total S s, image N bytes,\n"
    "                    memory N bytes[, parent N bytes, tracked N bytes,\n"
    "                    written N bytes, compared N bytes], trackers armed N\n"
    "                    [(why tracking was not used)][, smaps in a second\n"
    "                    freeze (why)], freeze MODE' (frozen: from the start of\n"
    "                    the freeze until the tree runs again, or is killed;\n"
    "                    with --parent: bytes left in PREV, bytes dirty\n"
    "                    tracking decided unread and how many of them were\n"
    "                    written, bytes compared with PREV; processes left with\n"
    "                    a tracker; a second freeze: smaps read before the\n"
    "                    first was out of date at its instant; MODE: 'snapshot'\n"
    "                    or 'full (why)')\n"
    "  --short-freeze    snapshot mode always: the tree is stopped only to\n"
    "                    capture its state and to make a frozen copy-on-write\n"
    "                    copy of each process (an injected clone3 into a frozen\n"
    "                    cgroup v2); it runs on while its memory is written from\n"
    "                    the copies. The default for a running tree without\n"
    "                    --kill with 8 MiB or more to store; where impossible\n"
    "                    (no cgroup v2, clone3 refused, imgtool itself traced)\n"
    "                    the dump freezes fully and --stats says why\n"
    "  --full-freeze     keep the tree stopped until its memory is written\n"
    "  --no-track-dirty  leave no dirty-page tracker: by default a dump that lets\n"
    "                    the tree run on leaves one in each process (two fds:\n"
    "                    a userfaultfd in write-protect mode and a memfd named\n"
    "                    ckpt-dirty-tracker, high in the fd table,\n"
    "                    close-on-exec, never in an image), so that a later\n"
    "                    --parent dump reads only the pages written since;\n"
    "                    without one --parent compares every page with PREV\n"
    "  --track-dirty     the default (see --no-track-dirty)\n"
    "  --leave-running   the default: the process carries on\n"
    "  --inject-strict-seccomp\n"
    "                    dump a thread in seccomp strict mode too (refused\n"
    "                    otherwise): its queries are syscalls injected into it,\n"
    "                    and a dumper killed during one kills that thread\n"
    "  --allow-unrestorable\n"
    "                    write the image even if it holds what restore cannot\n"
    "                    bring back, marked not restorable (for gdb, like a\n"
    "                    gcore); not with --kill\n"
    "  --exec            write the self-restoring form: FILE (0700) runs as\n"
    "                    ./FILE like 'imgtool restore FILE', with nothing\n"
    "                    installed; 'imgtool convert' switches forms\n"
    "  --parent PREV     incremental: store only the pages that changed since\n"
    "                    PREV, an earlier image of the same process or tree;\n"
    "                    FILE names PREV by its image id and by PREV as given\n"
    "                    (a relative path is resolved against FILE's directory,\n"
    "                    not the current one). Restore, verify and info follow\n"
    "                    the chain; 'imgtool merge' folds it into one image. Of\n"
    "                    a tree too: a process new since PREV is stored whole.\n"
    "                    FILE may not be PREV or an image PREV builds on.\n"
    "                    Pages are chosen by the dirty tracking the previous\n"
    "                    dump armed where it held since PREV, else by comparing\n"
    "                    them with PREV (CKPT_DIRTY_TRACKING=off: always compare)\n"
    "  --store-tmpfs-files\n"
    "                    also store the files on tmpfs/ramfs (/tmp, /dev/shm,\n"
    "                    /run) that the process holds open or maps shared, so\n"
    "                    that restore can recreate them if they are deleted\n"
    "\n"
    "A process holding what restore cannot bring back is refused before anything\n"
    "is written or killed, naming every such resource and the process holding it;\n"
    "the whole tree is left running (or stopped) as it was. Refused: sockets other\n"
    "than AF_UNIX, TCP and UDP; an AF_UNIX socket with a peer outside the tree or\n"
    "fds in flight; TCP sockets not LISTEN, ESTABLISHED or CLOSE, or half-closed;\n"
    "listeners with connections not yet accepted; an epoll fd watching a closed\n"
    "fd; io_uring, perf_event, bpf, fanotify, userfaultfd, pidfds; a pty whose\n"
    "master is outside the tree; character devices other than null, zero, full,\n"
    "random, urandom, terminals and consoles; POSIX timers signalling a thread\n"
    "other than the main one; SysV shm mapped in part; device memory, AIO\n"
    "contexts, memfd_secret, hugetlbfs files; memory a userfaultfd still serves\n"
    "(a --lazy restore not yet done: dump again once it is; its background copy\n"
    "starts CKPT_LAZY_BACKGROUND_DELAY_MS after the program runs). Pipes, files,\n"
    "memfds, eventfds, timerfds, signalfds, inotify and epoll fds, AF_UNIX\n"
    "sockets and socketpairs, TCP and UDP sockets, pty pairs whose master the tree\n"
    "holds and the terminal it runs on are dumped and restored.\n"
    "A dump that lets the tree run on leaves a dirty-page tracker in each process:\n"
    "two more fds, a userfaultfd (write-protect mode) and a memfd named\n"
    "ckpt-dirty-tracker, both close-on-exec, in the two highest free slots of the\n"
    "upper half of its fd table, so that a later --parent dump reads only the\n"
    "pages written since (docs/design/dirty-tracking.md); they are never part of\n"
    "an image. --no-track-dirty or CKPT_DIRTY_TRACKING=off arms none.\n"
    "A dump that fails or is killed leaves each process as it was (no tracker\n"
    "where there was none, no snapshot copy), before its exit can be seen.\n"
    "'--libckpt-caller TID:VALUE:FD' is internal to libckpt's ckpt_checkpoint.\n"
    "Interrupting a dump (SIGINT, SIGTERM, SIGHUP) stops it within moments and\n"
    "leaves no file behind and the process as it was.\n";

static std::atomic<bool> g_cancel{false};

static void on_signal(int) { g_cancel.store(true); }

int cmd_dump(int argc, char **argv) {
  auto parsed = parse_command("dump", argc, argv,
                              {{"--pid", true, ""},
                               {"--output", true, "-o"},
                               {"--kill", false, ""},
                               {"--leave-running", false, ""},
                               {"--store-tmpfs-files", false, ""},
                               {"--parent", true, ""},
                               {"--exec", false, ""},
                               {"--allow-unrestorable", false, ""},
                               {"--stats", false, ""},
                               {"--sync", false, ""},
                               {"--short-freeze", false, ""},
                               {"--full-freeze", false, ""},
                               {"--track-dirty", false, ""},
                               {"--no-track-dirty", false, ""},
                               {"--libckpt-caller", true, ""},
                               {"--inject-strict-seccomp", false, ""}}, kHelp);
  if (auto *code = std::get_if<int>(&parsed)) return *code;
  const Args &args = std::get<Args>(parsed);
  if (!args.positional.empty()) return fail("dump", "unexpected argument '" + args.positional[0] + "'");
  auto pid_text = args.get("--pid");
  auto output = args.get("--output");
  if (!pid_text) return fail("dump", "--pid PID is required (see 'imgtool dump --help')");
  if (!output) return fail("dump", "-o FILE is required (see 'imgtool dump --help')");
  if (args.has("--kill") && args.has("--leave-running")) return fail("dump", "--kill and --leave-running conflict");
  if (args.has("--kill") && args.has("--allow-unrestorable"))
    return fail("dump", "--kill and --allow-unrestorable conflict: the process could not be brought back");
  char *end = nullptr;
  long pid = std::strtol(pid_text->c_str(), &end, 10);
  if (!end || *end || pid <= 0 || pid > 0x3fffffff) return fail("dump", "'" + *pid_text + "' is not a pid");

  writer::DumpOptions opt;
  int result_fd = -1;
  if (auto caller = args.get("--libckpt-caller")) {
    // TID:VALUE:FD from libckpt (libckpt/src/checkpoint.c): thread TID of
    // the target waits in read() on the pipe whose write end is our fd FD;
    // its image resumes that read returning VALUE, and once the image is
    // in place we write the checkpoint id (8 bytes) to FD.
    long tid = 0;
    unsigned long long value = 0;
    int fd = -1, used = 0;
    if (std::sscanf(caller->c_str(), "%ld:%llu:%d%n", &tid, &value, &fd, &used) != 3 ||
        used != static_cast<int>(caller->size()) || tid <= 0 || fd < 0)
      return fail("dump", "--libckpt-caller wants TID:VALUE:FD, not '" + *caller + "'");
    opt.caller_tid = static_cast<pid_t>(tid);
    opt.caller_resume_value = value;
    result_fd = fd;
  }
  opt.pid = static_cast<pid_t>(pid);
  opt.output = *output;
  if (auto prev = args.get("--parent")) opt.parent = *prev;
  opt.kill_after = args.has("--kill");
  opt.sync = args.has("--sync");
  if (args.has("--short-freeze") && args.has("--full-freeze"))
    return fail("dump", "--short-freeze and --full-freeze conflict");
  if (args.has("--short-freeze")) opt.freeze_mode = writer::DumpOptions::FreezeMode::Snapshot;
  if (args.has("--full-freeze")) opt.freeze_mode = writer::DumpOptions::FreezeMode::Full;
  opt.allow_unrestorable = args.has("--allow-unrestorable");
  opt.store_tmpfs_files = args.has("--store-tmpfs-files");
  opt.inject_strict_seccomp = args.has("--inject-strict-seccomp");
  const char *tracking = std::getenv("CKPT_DIRTY_TRACKING");
  opt.dirty_tracking = !(tracking && std::strcmp(tracking, "off") == 0);
  if (args.has("--track-dirty") && args.has("--no-track-dirty"))
    return fail("dump", "--track-dirty and --no-track-dirty conflict");
  opt.arm_dirty_tracking = !args.has("--no-track-dirty");
  if (args.has("--exec")) opt.exec_launcher = launcher_bytes();
  opt.show_progress = isatty(STDERR_FILENO);
  opt.cancel = &g_cancel;
  // Interrupting a dump must not leave the target stopped or a partial
  // file behind: the signal only asks the dump to stop at the next step
  // (no SA_RESTART: a blocked waitpid or write returns EINTR and sees the
  // request). A signal ignored on entry (nohup, a background job's
  // SIGINT) stays ignored, as the user asked.
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    sigaction(sig, &sa, nullptr);
  }
  signal(SIGPIPE, SIG_IGN);  // a closed pipe on "-o -" is an error (EPIPE), not death

  auto stats = writer::dump_process(opt);
  if (!stats) return fail("dump", stats.error().message());
  if (args.has("--stats")) {
    std::string line;
    char buf[256];
    std::snprintf(buf, sizeof buf, "dump stats: frozen %.6f s, total %.6f s, image %llu bytes, memory %llu bytes",
                  stats->frozen_seconds, stats->total_seconds, static_cast<unsigned long long>(stats->image_bytes),
                  static_cast<unsigned long long>(stats->memory_bytes));
    line = buf;
    if (!opt.parent.empty()) {
      std::snprintf(buf, sizeof buf, ", parent %llu bytes, tracked %llu bytes, written %llu bytes, compared %llu bytes",
                    static_cast<unsigned long long>(stats->parent_bytes),
                    static_cast<unsigned long long>(stats->tracked_bytes),
                    static_cast<unsigned long long>(stats->written_bytes),
                    static_cast<unsigned long long>(stats->compared_bytes));
      line += buf;
    }
    line += ", trackers armed " + std::to_string(stats->trackers_armed);
    if (!stats->tracking_note.empty()) line += " (" + stats->tracking_note + ")";
    if (stats->trackers_reused) line += ", trackers reused " + std::to_string(stats->trackers_reused);
    if (stats->trackers_prearmed) {
      std::snprintf(buf, sizeof buf, ", armed before the freeze %u (kept %u) in %.6f s", stats->trackers_prearmed,
                    stats->trackers_prearmed_kept, stats->prearm_stopped_seconds);
      line += buf;
    }
    // Only the unusual case: the early smaps read was out of date.
    if (stats->smaps_note.rfind("in a second", 0) == 0) line += ", smaps " + stats->smaps_note;
    line += ", freeze " + stats->freeze_mode;
    if (stats->cow_shared_bytes) line += ", stored once " + std::to_string(stats->cow_shared_bytes) + " bytes";
    if (stats->shared_memory_once_bytes)
      line += ", shared memory stored once " + std::to_string(stats->shared_memory_once_bytes) + " bytes";
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  if (result_fd >= 0) {
    // A positive id (fork()'s convention): the image id's first 8 bytes.
    long long id = static_cast<long long>(stats->image_id & 0x7fffffffffffffffull);
    if (id == 0) id = 1;
    // With --kill nobody reads it any more (EPIPE, SIGPIPE ignored above).
    if (write(result_fd, &id, sizeof id) != static_cast<ssize_t>(sizeof id) && !opt.kill_after)
      return fail("dump", "cannot hand the checkpoint id to the caller: " + std::string(strerror(errno)));
  }
  return 0;
}

}  // namespace ckpt::tool
