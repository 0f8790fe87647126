// restore_image: check, create the restored process as our child with its
// original pid, let it become its image (become_image.h), take the
// restorer's verdict (verdict.h), hand it over (handover.h), and in the
// foreground wait for it and pass on its exit status. --pidns runs the
// same steps inside a new pid namespace under a small init (pidns.h).
#include <ckpt/reader/restore.h>
#include <ckpt/reader/restore_source.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <linux/sched.h>
#include <optional>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/img/chain.h>
#include <ckpt/img/fault_point.h>
#include <ckpt/img/xstate.h>
#include <ckpt/reader/validate.h>

#include "become_image.h"
#include "fd_kinds/fd_kind.h"
#include "foreground_terminal.h"
#include "handover.h"
#include "image_trust.h"
#include "phase_times.h"
#include "pid_file.h"
#include "pidns.h"
#include "preflight.h"
#include "restore_session.h"
#include "stored_files.h"
#include "sysv_ipc.h"
#include "stream_spool.h"
#include "tree_create.h"
#include "tree_plan.h"
#include "verdict.h"

namespace ckpt::reader {

using namespace img;

namespace {

// Known gap (decisions 226, 239), refused before anything is made: in a
// tree, imgtool adds the late seals of a memfd that no fd holds through
// /proc/PID/map_files once every process has mapped it, and map_files
// opens only with CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in the initial
// user namespace (proc_map_files_get_link), which an unprivileged --pidns
// restore, in a user namespace of its own, lacks.
Status check_tree_late_seals_reachable(const TreePlan &tree) {
  for (const TreeProcess &p : tree.processes)
    if (p.view)
      for (const VmaRecord &m : p.view->vmas.records)
        if (u32 seals = mapped_memfd_late_seals(m))
          return make_error("process %d: the memfd mapped at 0x%llx (%s) was sealed with 0x%x after its mappings: "
                            "sealing it again in a tree needs /proc/PID/map_files, which an unprivileged --pidns "
                            "restore may not open (restore as root; not supported yet)",
                            p.pid, (unsigned long long)m.start, std::string(p.view->vmas.str_or_empty(m.path)).c_str(),
                            seals);
  return {};
}

// Our standard streams that stand for the dumping terminal's.
void restoring_terminal(int terminal[3]) {
  for (int i = 0; i < 3; i++) terminal[i] = isatty(i) ? i : -1;
  // Without a terminal, fds that were the dumping terminal get our own
  // standard streams, whatever they are.
  for (int i = 0; i < 3; i++)
    if (terminal[i] < 0 && fcntl(i, F_GETFD) >= 0) terminal[i] = i;
}

// clone3 with the image's pid; the child becomes the image and never returns.
// checks_end: our end of the checks' pipe (ChildChannels::checks_fd), or -1.
Expected<pid_t> create_process(const LoadedImage &loaded, pid_t pid, ChildChannels channels, int parent_end,
                               int checks_end, LazyHelper &lazy) {
  ProcessImage process{loaded.path, loaded.image, loaded.view, loaded.core};
  struct clone_args ca = {};
  ca.exit_signal = SIGCHLD;
  ca.set_tid = reinterpret_cast<u64>(&pid);
  ca.set_tid_size = 1;
  pid_t parent = getpid();
  long made = syscall(SYS_clone3, &ca, sizeof ca);
  if (made < 0) {
    int e = errno;
    if (e == EEXIST) return Error(pid_taken_message(pid, false));
    if (e == EPERM) return not_permitted_to_restore();
    return make_error("cannot create a process with pid %d: %s", pid, strerror(e));
  }
  if (made == 0) {
    die_with_parent(parent);
    close(parent_end);
    if (checks_end >= 0) close(checks_end);
    lazy.close_parent_end();
    become_image_or_report(process, channels);
  }
  return static_cast<pid_t>(made);
}

pid_t g_root = 0;
// A restored process in our own process group already gets the terminal's
// signals; forwarding them too would deliver each twice.
void forward_signal(int sig) {
  if (g_root > 0 && (getpgid(g_root) != getpgrp() || (sig != SIGINT && sig != SIGQUIT && sig != SIGWINCH)))
    kill(g_root, sig);
}

}  // namespace

Status start_restored(const LoadedImage &loaded, bool lazy_restore, RestoredProcesses &out) {
  if (loaded.tree)
    return start_tree(*loaded.tree, lazy_restore, loaded.hold_stopped, out, loaded.take_terminal, loaded.before_running);
  int status[2];
  if (pipe2(status, O_CLOEXEC) < 0) return make_error("pipe: %s", strerror(errno));
  ChildChannels channels;
  channels.status_fd = status[1];
  restoring_terminal(channels.terminal);
  channels.take_terminal = loaded.take_terminal;
  if (lazy_restore) {
    auto sock = out.lazy.open_channel();
    if (!sock) {
      close(status[0]);
      close(status[1]);
      return sock.error();
    }
    channels.lazy_sock = *sock;
  }
  // The checks left for now (DECISIONS 268) run while the child starts
  // on the other CPU: a fork's copy-on-write faults, opening the image,
  // the mapped files and the userfaultfd.
  int checks[2] = {-1, -1};
  if (loaded.checks_after_fork && pipe2(checks, O_CLOEXEC) < 0) {
    int e = errno;
    close(status[0]);
    close(status[1]);
    if (channels.lazy_sock >= 0) close(channels.lazy_sock);
    return make_error("pipe: %s", strerror(e));
  }
  channels.checks_fd = checks[0];
  auto pid = create_process(loaded, loaded.view.tasks.records[0].pid, channels, status[0], checks[1], out.lazy);
  trace_phase("process created (clone3)");
  close(status[1]);
  if (channels.lazy_sock >= 0) close(channels.lazy_sock);
  if (!pid) {
    close(status[0]);
    if (checks[0] >= 0) close(checks[0]);
    if (checks[1] >= 0) close(checks[1]);
    return pid.error();
  }
  out.root = *pid;
  // An injected failure (CKPT_FAULT=...:eio) ends the process as any
  // failure before the handover does.
  auto give_up = [&](const Error &e) -> Status {
    kill(*pid, SIGKILL);
    waitpid(*pid, nullptr, 0);
    return e;
  };
  if (loaded.checks_after_fork) {
    Status passed = loaded.checks_after_fork();
    // Our read end stays open until the byte is written: a child that
    // already failed (its reason is on the status pipe) then costs no
    // SIGPIPE. Both ends close before the helper's fork.
    if (passed) (void)!write(checks[1], "y", 1);
    close(checks[0]);
    close(checks[1]);
    if (!passed) {
      close(status[0]);
      return give_up(passed.error());
    }
  }
  if (Status s = fault_point("restore-forked"); !s) {
    close(status[0]);
    return give_up(s.error());
  }
  // The lazy-pages helper, forked after status[1] is closed so that it
  // does not hold the verdict pipe open.
  if (lazy_restore) {
    if (Status started = out.lazy.start(loaded.image, loaded.view, *pid); !started) {
      close(status[0]);
      kill(*pid, SIGKILL);
      waitpid(*pid, nullptr, 0);
      return started.error();
    }
    trace_phase("lazy-pages helper started");
  }
  auto where = await_verdict(status[0], *pid);
  if (!where) return where.error();
  if (tracing_times()) trace_phasef("restorer reported success (its process: cpu %.3f ms)", process_cpu_ms(*pid));
  if (Status s = fault_point("restore-before-handover"); !s) return give_up(s.error());
  std::string warning;
  Handover handover = handover_of(loaded.view, *pid, *where);
  handover.stopped = handover.stopped || loaded.hold_stopped;
  if (loaded.before_running)
    if (Status s = loaded.before_running(*pid); !s) return give_up(s.error());
  CKPT_TRY(hand_over(handover, &warning));
  trace_phase("handed over: the program runs");
  if (!warning.empty()) std::fprintf(stderr, "imgtool restore: warning: %s\n", warning.c_str());
  // A test holds restore here until the program and the helper are gone
  // (DECISIONS 255: go() after the helper's end).
  if (lazy_restore)
    if (Status s = fault_point("restore-lazy-before-go"); !s) return s.error();
  return out.lazy.go();
}

Expected<int> wait_in_foreground(pid_t root, pid_t child, ForegroundTerminal *terminal) {
  g_root = root;
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH}) sigaction(sig, &sa, nullptr);
  auto status = terminal && terminal->active() ? terminal->wait(child) : wait_exit_status(child);
  trace_phase("restored process exited");
  return status;
}

Expected<int> restore_image(const RestoreOptions &opt) {
  start_phase_clock();
  trace_phase("restore starts");
  // Not privileged to recreate pids: --pidns can still, from a user
  // namespace of our own (pidns.h), entered once every check is done.
  if (opt.pidns && !check_restore_privilege()) plan_own_user_namespace();
  else CKPT_TRY(check_restore_privilege());
  // Opened before anything is restored, written just before the tree runs
  // (before_running below; with --pidns once it runs: pid_file.h).
  auto pidfile = PidFile::open(opt.pidfile);
  if (!pidfile) return pidfile.error();
  // "-": the image comes on standard input, spooled whole (stream_spool.h)
  // and then restored from like a file.
  std::optional<StreamSpool> spool;
  std::string path = opt.image;
  if (opt.image == "-") {
    if (opt.lazy)
      return make_error("--lazy maps memory from an image file that stays in place; an image on standard input "
                        "can only be restored eagerly (without --lazy)");
    auto spooled = StreamSpool::from_fd(STDIN_FILENO);
    if (!spooled) return spooled.error();
    spool.emplace(spooled.take());
    path = spool->path();
  }
  // An incremental image: its chain, checked and merged into one
  // temporary image, which everything below restores as usual.
  auto source = RestoreSource::open(path, opt.image == "-" ? "." : "");
  if (!source) return source.error();
  path = source->path();
  // The same checks as verify's, so both say the same thing, save the
  // checksums of stored memory: eager restore checks those as its
  // restorers read the bytes in, or just before (fill_checks.h), so the
  // image is read once; lazy restore must not read them at all. The image
  // is opened and decoded once, for the checks, and restored from what
  // they decoded.
  HereNowOptions here_now;
  here_now.reopen_changed_files = opt.reopen_changed_files;
  here_now.new_pid_namespace = opt.pidns;
  std::optional<ImageReader> image = source->take_image();
  if (!image) {
    if (auto opened = ImageReader::open(path, LauncherCheck::HeadersOnly); opened) image.emplace(opened.take());
    else return opened.error();
  }
  DecodedImage decoded;
  // One process, not in a new pid namespace: the mapped files' build-ids
  // and the vdso are checked after clone3, beside the child's start
  // (DECISIONS 268).
  Restorability restorability =
      check_restorable_opened(path, *image, /*check_memory=*/false, here_now, decoded, /*leave_file_checks=*/!opt.pidns);
  if (!restorability.restorable()) return Error(restorability.message);
  trace_phase("checked: restorable here now");
  // Asked here, once: every restoring child forked below inherits it
  // instead of asking the CPU again (xstate.cc).
  (void)cpu_xsave_layout();
  std::optional<CkptView> &view = decoded.view;
  LoadedImage loaded{path, *image, *view, *decoded.core, nullptr, nullptr};
  loaded.hold_stopped = opt.hold_stopped;
  std::optional<TreePlan> &tree = decoded.tree;
  if (tree) loaded.tree = &*tree;
  trace_phase("image opened and decoded");
  if (tree && own_user_namespace_planned()) CKPT_TRY(check_tree_late_seals_reachable(*tree));
  // Whom the file comes from (image_trust.h). An image on standard input
  // is vouched for by whoever runs the pipeline.
  if (!opt.trust_image && opt.image != "-") {
    std::vector<const CkptView *> views;
    if (tree) {
      for (const TreeProcess &p : tree->processes)
        if (p.view) views.push_back(&*p.view);
    } else {
      views.push_back(&*view);
    }
    // An incremental image's parents give memory too: each file counts.
    std::vector<std::string> files{opt.image};
    if (source->merged())
      if (auto chain = open_chain(opt.image, false, "", LauncherCheck::HeadersOnly); chain)
        for (const auto &link : *chain)
          if (link->path != opt.image) files.push_back(link->path);
    for (const std::string &file : files) CKPT_TRY(check_image_trust(file, views));
  }
  // A spooled stream is memory as large as the image: gone once every
  // restorer has read its pages (they close their fds to it before the
  // process runs), not kept while we wait for the process. Only the
  // records copied out of it (view's tables) are used afterwards.
  if (spool)
    loaded.memory_restored = [&] {
      tree.reset();
      image.reset();
      spool->release();
    };
  // Stored files that are gone come back before the process that needs
  // them, and go again if it never runs.
  auto recreated = recreate_missing_files(*view);
  if (!recreated) return recreated.error();
  struct RemoveUnlessRunning {
    std::vector<std::string> paths;
    bool running = false;
    ~RemoveUnlessRunning() {
      if (!running) remove_files(paths);
    }
  } recreated_files{recreated.take()};
  if (decoded.file_checks_left)
    loaded.checks_after_fork = [&image = *image, &view = *view, &recreated = recreated_files.paths] {
      return check_files_and_vdso(image, view, recreated);
    };
  // SysV IPC objects before the processes that attach them (and, for a
  // tree's own IPC namespace, the namespace they are born into).
  auto ipc = make_sysv_ipc(*view);
  if (!ipc) return ipc.error();

  if (opt.pidns) {
    return restore_in_new_pid_namespace(opt, loaded, *pidfile, [&] {
      recreated_files.running = true;
      ipc->started();
      if (loaded.memory_restored) loaded.memory_restored();
    });
  }
  // In the foreground on a terminal: the program's terminal handling
  // (foreground_terminal.h), by its root's records. --pidns keeps
  // today's streams.
  ForegroundTerminal terminal;
  if (!opt.detach) {
    terminal = ForegroundTerminal::for_image(tree ? *tree->processes[0].view : *view);
    loaded.take_terminal = terminal.root_takes_terminal();
    if (!terminal.warning().empty()) std::fprintf(stderr, "imgtool restore: warning: %s\n", terminal.warning().c_str());
  }
  // The pid file is written once every process is restored and before
  // any runs (the root's pid is the image's here, not --pidns): a write
  // that fails (a full disk, /dev/full) ends the whole tree, stopped,
  // instead of leaving it running unreported (CONTRACT).
  loaded.before_running = [&](pid_t root) -> Status {
    if (!opt.detach) terminal.give(root);
    return pidfile->write(root);
  };
  RestoredProcesses restored;
  if (Status started = start_restored(loaded, opt.lazy, restored); !started) {
    if (terminal.active()) terminal.take_back();
    return started.error();
  }
  terminal.tell_to_redraw();
  recreated_files.running = true;
  ipc->started();
  if (loaded.memory_restored) loaded.memory_restored();
  if (opt.detach) {
    restored.detach_helpers();  // they outlive us, serving the processes
    return 0;
  }
  return wait_in_foreground(restored.root, restored.root, &terminal);
}

}  // namespace ckpt::reader
