// Creating a tree's processes (tree_create.h).
#include "tree_create.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <set>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <ckpt/img/fault_point.h>
#include <ckpt/img/fd_kinds.h>
#include <ckpt/img/file_identity.h>

#include "become_image.h"
#include "fd_kinds/fd_kind.h"
#include "handover.h"
#include "mapped_objects.h"
#include "preflight.h"
#include "verdict.h"

namespace ckpt::reader {

using namespace img;

namespace {

// What every process of the tree inherits from imgtool.
struct TreeChannels {
  int created = -1;                 ///< write end: each process's pid, once it exists
  int go = -1;                      ///< read end: EOF once every process exists
  std::vector<int> status;          ///< per process index: write end of its verdict pipe (-1: zombie)
  std::vector<int> lazy_sock;       ///< per process index: --lazy: its end of its helper's channel, or -1
  int terminal[3] = {-1, -1, -1};
  bool take_terminal = false;       ///< the root takes the restoring terminal after setsid
  InheritedObjects inherited;
};

[[noreturn]] void report_and_exit(const TreeChannels &ch, size_t index, const std::string &what) {
  std::string line = what + "\n";
  if (ch.status[index] >= 0) (void)!write(ch.status[index], line.data(), line.size());
  _exit(127);
}

// A deleted file mapped shared by several processes. Where one of them
// (or another process of the tree) still holds an fd on it, it is that
// fd's file, recreated here with its owner, mode and bytes, and the fd's
// open file is inherited by file_id too (restore_fds takes it from there):
// the fd and every mapping stay one file. Otherwise a new file holding the
// mappings' stored bytes.
Expected<int> deleted_file_object(const TreePlan &plan, const VmaRecord &m, const std::vector<ObjectMappings> &sources,
                                  u64 size, TreeChannels &ch) {
  for (const TreeProcess &q : plan.processes) {
    if (q.zombie) continue;
    for (const FdRecord &f : q.view->fds.records) {
      auto type = static_cast<FdType>(f.type);
      if (!f.file_id || !same_file(m, f) || (type != FdType::Regular && type != FdType::MemFd)) continue;
      int file;
      if (auto made = ch.inherited.fds.files.find(f.file_id); made != ch.inherited.fds.files.end()) {
        file = made->second;  // shared by several processes: made already (File sorts before Memory)
      } else {
        auto opened = open_file_description(*q.view, f, ch.terminal);
        if (!opened) return opened.error().context("process " + std::to_string(q.pid));
        file = ch.inherited.fds.files[f.file_id] = *opened;
      }
      // A new open file of it for the mappings, whatever the fd's access;
      // read-only where its mode allows no more (an unprivileged restore
      // of a 0444 file: its mappings are read-only then too).
      std::string self = "/proc/self/fd/" + std::to_string(file);
      int mapped = open(self.c_str(), O_RDWR | O_CLOEXEC);
      if (mapped < 0 && (errno == EACCES || errno == EPERM)) mapped = open(self.c_str(), O_RDONLY | O_CLOEXEC);
      if (mapped < 0)
        return make_error("cannot reopen the recreated %s for its shared mappings: %s",
                          std::string(q.view->fds.str_or_empty(f.path)).c_str(), strerror(errno));
      return mapped;
    }
  }
  return new_deleted_file_object(sources, size);
}

// Makes, in the root, every object several processes share.
Status make_inherited_objects(const TreePlan &plan, TreeChannels &ch) {
  for (const auto &[key, use] : plan.shared) {
    const TreeProcess &p = plan.processes[use.process];
    const CkptView &v = *p.view;
    std::string who = "process " + std::to_string(p.pid);
    switch (key.kind) {
      case SharedKey::File: {
        auto fd = open_file_description(v, v.fds.records[use.record], ch.terminal);
        if (!fd) return fd.error().context(who);
        ch.inherited.fds.files[static_cast<u32>(key.a)] = *fd;
        break;
      }
      case SharedKey::Pipe: {
        // Its buffered bytes are with the first process that holds an end.
        const CkptView *holder = &v;
        for (const TreeProcess &q : plan.processes)
          if (!q.zombie)
            for (const PipeRecord &pr : q.view->pipes.records)
              if (pr.pipe_id == key.a) holder = &*q.view;
        auto ends = recreate_pipe(*holder, static_cast<u32>(key.a));
        if (!ends) return ends.error().context(who);
        ch.inherited.fds.pipes[static_cast<u32>(key.a)] = *ends;
        break;
      }
      case SharedKey::UnixPair: {
        // Both ends, wherever they are held (each with its own queue).
        const CkptView *vb = nullptr;
        const FdRecord *ra = nullptr, *rb = nullptr;
        const CkptView *va = nullptr;
        for (const TreeProcess &q : plan.processes) {
          if (q.zombie) continue;
          for (const FdRecord &r : q.view->fds.records) {
            if (static_cast<FdType>(r.type) != FdType::Socket) continue;
            if (r.ino == key.a && !ra) ra = &r, va = &*q.view;
            if (r.ino == key.b && !rb) rb = &r, vb = &*q.view;
          }
        }
        if (!ra || !rb) return make_error("%s: socket pair %llu/%llu lacks an end", who.c_str(),
                                          (unsigned long long)key.a, (unsigned long long)key.b);
        auto ends = recreate_unix_pair(*va, *ra, vb, rb);
        if (!ends) return ends.error().context(who);
        ch.inherited.fds.unix_sockets[key.a] = ends->first;
        ch.inherited.fds.unix_sockets[key.b] = ends->second;
        break;
      }
      case SharedKey::PtyPair: {
        // Its master (one open file, wherever held) and a slave, if any
        // process holds one (its owner and mode come from it).
        const CkptView *mv = nullptr, *sv = nullptr;
        const FdRecord *master = nullptr, *slave = nullptr;
        for (const TreeProcess &q : plan.processes) {
          if (q.zombie) continue;
          for (const FdRecord &r : q.view->fds.records) {
            auto index = pty_index(*q.view, r);
            if (!index || *index != key.a) continue;
            auto state = fd_state<TtyState>(q.view->fds, r);
            if (!state) return state.error().context(who);
            if ((state->flags & kTtyMaster) && !master) master = &r, mv = &*q.view;
            if ((state->flags & kTtySlave) && !slave) slave = &r, sv = &*q.view;
          }
        }
        if (!master) return make_error("%s: pty %llu: its master is in no process of the tree", who.c_str(),
                                       (unsigned long long)key.a);
        auto pair = make_tree_pty_pair(*mv, *master, sv, slave);
        if (!pair) return pair.error().context(who);
        ch.inherited.fds.pty_pairs[static_cast<u32>(key.a)] = *pair;
        break;
      }
      case SharedKey::Memory: {
        // From every process's mappings of it, at its largest extent: each
        // page is stored once, by the first process mapping it (§9.23), so
        // the bytes a later process alone maps (one its parent unmapped
        // since) are in that process's core only.
        const VmaRecord &m = v.vmas.records[use.record];
        u64 size = 0;
        std::vector<ObjectMappings> sources;
        for (const TreeProcess &q : plan.processes)
          if (!q.zombie)
            if (ObjectMappings o = mappings_of_object(*q.view, *q.image, m, &size); !o.maps.empty())
              sources.push_back(std::move(o));
        auto kind = static_cast<VmaKind>(m.kind);
        Expected<int> fd = kind == VmaKind::File ? deleted_file_object(plan, m, sources, size, ch)
                                                 : new_shared_anon_object(sources, size,
                                                                          kind == VmaKind::Hugetlb ? hugetlb_mmap_flags(m.page_size) : 0);
        if (!fd) return fd.error().context(who);
        ch.inherited.memory[{m.kind, m.dev, m.ino}] = *fd;
        break;
      }
    }
  }
  return {};
}

bool in_tree(const TreePlan &plan, pid_t pid) {
  for (const TreeProcess &p : plan.processes)
    if (p.pid == pid) return true;
  return false;
}

long clone_with_pid(pid_t pid, int exit_signal) {
  struct clone_args ca = {};
  ca.exit_signal = static_cast<u64>(exit_signal);
  ca.set_tid = reinterpret_cast<u64>(&pid);
  ca.set_tid_size = 1;
  pid_t parent = getpid();
  long made = syscall(SYS_clone3, &ca, sizeof ca);
  if (made == 0) die_with_parent(parent);
  return made;
}

void wait_for_go(int go) {
  char c;
  while (read(go, &c, 1) < 0 && errno == EINTR) {
  }
}

// Steps 1 to 5 of tree_create.h for process `index`, in the process itself.
[[noreturn]] void run_process(const TreePlan &plan, size_t index, TreeChannels &ch) {
  const TreeProcess &p = plan.processes[index];
  // 1. Its session or process group, before its children exist.
  if (p.sid == p.pid && getsid(0) != p.pid) {
    if (setsid() < 0) report_and_exit(ch, index, "process " + std::to_string(p.pid) + ": setsid: " + strerror(errno));
    // Before its children exist, so that its session's processes share
    // it (ForegroundTerminal, decision 147).
    for (int t : ch.terminal)
      if (index == 0 && ch.take_terminal && t >= 0 && isatty(t)) {
        if (ioctl(t, TIOCSCTTY, 1) != 0)
          report_and_exit(ch, index, "process " + std::to_string(p.pid) +
                                         ": cannot make the restoring terminal its controlling terminal: " + strerror(errno));
        break;
      }
  } else if (p.pgid == p.pid && getpgid(0) != p.pid) {
    if (setpgid(0, 0) < 0)
      report_and_exit(ch, index, "process " + std::to_string(p.pid) + ": setpgid: " + strerror(errno));
  }
  // 2. It exists.
  i32 me = p.pid;
  (void)!write(ch.created, &me, sizeof me);
  if (p.zombie) {
    wait_for_go(ch.go);
    if (p.pgid != p.pid && in_tree(plan, p.pgid)) setpgid(0, p.pgid);
    // It dies as it died: the status its parent's waitpid() gets.
    if (WIFSIGNALED(p.wait_status)) {
      int sig = WTERMSIG(p.wait_status);
      signal(sig, SIG_DFL);
      sigset_t one;
      sigemptyset(&one);
      sigaddset(&one, sig);
      sigprocmask(SIG_UNBLOCK, &one, nullptr);
      kill(getpid(), sig);
    }
    _exit(WEXITSTATUS(p.wait_status));
  }
  // 3. Its children, with their pids.
  std::vector<pid_t> zombies;
  std::set<int> exit_signals;
  for (size_t c : p.children) {
    const TreeProcess &child = plan.processes[c];
    int sig = child.exit_signal >= 0 && child.exit_signal < 65 ? child.exit_signal : SIGCHLD;
    long made = clone_with_pid(child.pid, sig);
    if (made < 0) {
      int e = errno;
      report_and_exit(ch, index,
                      e == EEXIST ? pid_taken_message(child.pid, false)
                                  : "cannot create process " + std::to_string(child.pid) + ": " + strerror(e));
    }
    if (made == 0) run_process(plan, c, ch);
    if (child.zombie) zombies.push_back(child.pid);
    if (sig) exit_signals.insert(sig);
  }
  // 4. Every process exists: its group's leader too.
  wait_for_go(ch.go);
  if (p.pgid != p.pid && in_tree(plan, p.pgid) && getpgid(0) != p.pgid && setpgid(0, p.pgid) < 0)
    report_and_exit(ch, index,
                    "process " + std::to_string(p.pid) + ": setpgid to group " + std::to_string(p.pgid) + ": " +
                        strerror(errno));
  // Its zombies have exited (not reaped: WNOWAIT); the signals their exits
  // sent us are dropped, as the original had taken them long ago (the
  // image's own pending signals are queued again by the restorer).
  for (pid_t z : zombies) {
    siginfo_t info;
    while (waitid(P_PID, static_cast<id_t>(z), &info, WEXITED | WNOWAIT | __WALL) < 0 && errno == EINTR) {
    }
  }
  sigset_t drop;
  sigemptyset(&drop);
  for (int sig : exit_signals) sigaddset(&drop, sig);
  timespec zero{0, 0};
  while (sigtimedwait(&drop, nullptr, &zero) > 0) {
  }
  // 5. Its image.
  ProcessImage process{plan.path, *p.image, *p.view, *p.core};
  ChildChannels channels;
  channels.status_fd = ch.status[index];
  channels.lazy_sock = ch.lazy_sock[index];
  for (int i = 0; i < 3; i++) channels.terminal[i] = ch.terminal[i];
  channels.inherited = &ch.inherited;
  become_image_or_report(process, channels);
}

// Reads each process's pid from `created` until all exist; a verdict pipe
// that becomes readable first means a process failed (or died).
Status await_created(const TreePlan &plan, int created, const std::vector<int> &status_read,
                     std::vector<pid_t> &pids) {
  while (pids.size() < plan.processes.size()) {
    std::vector<pollfd> fds{{created, POLLIN, 0}};
    for (int fd : status_read)
      if (fd >= 0) fds.push_back({fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return make_error("poll: %s", strerror(errno));
    }
    for (size_t i = 1; i < fds.size(); i++)
      if (fds[i].revents) return make_error("a process failed while the tree was created");
    if (fds[0].revents & POLLIN) {
      i32 pid;
      ssize_t n = read(created, &pid, sizeof pid);
      if (n == sizeof pid) pids.push_back(pid);
      else if (n <= 0) return make_error("the tree's processes ended while it was created");
    } else if (fds[0].revents) {
      return make_error("the tree's processes ended while it was created");
    }
  }
  return {};
}

// The verdict of a process that is not our child: RS_OK and where its
// restorer is, or its line.
Expected<rs_handover> read_tree_verdict(int fd, pid_t pid) {
  std::string verdict = read_verdict(fd);
  if (auto where = handover_of(verdict)) return *where;
  if (verdict.empty()) return make_error("process %d ended before it was running", pid);
  if (auto damaged = checksum_failure(verdict)) return Error(*damaged);  // the image's, as verify says it
  if (verdict.size() >= 2 && verdict.size() % 2 == 0 && static_cast<unsigned char>(verdict[0]) < 32)
    return make_error("process %d: %s", pid, describe_restorer_failure(verdict).c_str());
  while (!verdict.empty() && verdict.back() == '\n') verdict.pop_back();
  if (verdict.rfind("process ", 0) == 0) return Error(verdict);
  return make_error("process %d: %s", pid, verdict.c_str());
}

}  // namespace

Status start_tree(const TreePlan &plan, bool lazy, bool hold_stopped, RestoredProcesses &out, bool take_terminal,
                  const std::function<Status(pid_t)> &before_running) {
  const size_t n = plan.processes.size();
  TreeChannels ch;
  std::vector<int> status_read(n, -1);
  int created[2] = {-1, -1}, go[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : {created[0], created[1], go[0], go[1]})
      if (fd >= 0) close(fd);
    for (int fd : status_read)
      if (fd >= 0) close(fd);
    for (int fd : ch.status)
      if (fd >= 0) close(fd);
    for (int fd : ch.lazy_sock)
      if (fd >= 0) close(fd);
  };
  ch.status.assign(n, -1);
  ch.lazy_sock.assign(n, -1);
  out.tree_lazy.clear();
  out.tree_lazy.resize(n);
  if (pipe2(created, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0) {
    close_all();
    return make_error("pipe: %s", strerror(errno));
  }
  for (size_t i = 0; i < n; i++) {
    if (plan.processes[i].zombie) continue;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
      close_all();
      return make_error("pipe: %s", strerror(errno));
    }
    status_read[i] = p[0];
    ch.status[i] = p[1];
    if (lazy) {
      out.tree_lazy[i] = std::make_unique<LazyHelper>();
      auto sock = out.tree_lazy[i]->open_channel();
      if (!sock) {
        close_all();
        return sock.error();
      }
      ch.lazy_sock[i] = *sock;
    }
  }
  ch.created = created[1];
  ch.go = go[0];
  for (int i = 0; i < 3; i++) ch.terminal[i] = isatty(i) ? i : (fcntl(i, F_GETFD) >= 0 ? i : -1);
  ch.take_terminal = take_terminal;

  // While the tree is being made, its orphans (a process whose parent
  // failed) become ours, so that a failure can reap them: none is left as
  // a zombie holding a pid (the init of some machines reaps nothing).
  int was_subreaper = 0;
  prctl(PR_GET_CHILD_SUBREAPER, &was_subreaper);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  long root = clone_with_pid(plan.processes[0].pid, SIGCHLD);
  if (root < 0) {
    int e = errno;
    prctl(PR_SET_CHILD_SUBREAPER, was_subreaper);
    close_all();
    if (e == EEXIST) return Error(pid_taken_message(plan.processes[0].pid, false));
    if (e == EPERM) return not_permitted_to_restore();
    return make_error("cannot create a process with pid %d: %s", plan.processes[0].pid, strerror(e));
  }
  if (root == 0) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    close(go[1]);
    close(created[0]);
    for (int fd : status_read)
      if (fd >= 0) close(fd);
    for (auto &h : out.tree_lazy)
      if (h) h->close_parent_end();
    if (Status s = make_inherited_objects(plan, ch); !s) report_and_exit(ch, 0, s.error().message());
    run_process(plan, 0, ch);
  }
  close(created[1]);
  close(go[0]);
  created[1] = go[0] = -1;
  for (int &fd : ch.status)
    if (fd >= 0) close(fd), fd = -1;
  for (int &fd : ch.lazy_sock)
    if (fd >= 0) close(fd), fd = -1;

  std::vector<pid_t> pids;
  // Any failure: every process created so far goes (none has run).
  auto fail = [&](Error e) -> Status {
    kill(static_cast<pid_t>(root), SIGKILL);
    for (pid_t p : pids) kill(p, SIGKILL);
    // The first line a process wrote says more than "a process failed".
    for (size_t i = 0; i < n; i++)
      if (status_read[i] >= 0) {
        int flags = fcntl(status_read[i], F_GETFL);
        fcntl(status_read[i], F_SETFL, flags | O_NONBLOCK);
        char buf[512];
        ssize_t got = read(status_read[i], buf, sizeof buf);
        if (got > 0 && static_cast<unsigned char>(buf[0]) >= 32) {
          std::string line(buf, static_cast<size_t>(got));
          line = line.substr(0, line.find('\n'));
          e = line.rfind("process ", 0) == 0 ? Error(line)
                                              : make_error("process %d: %s", plan.processes[i].pid, line.c_str());
          break;
        }
      }
    close_all();
    out.tree_lazy.clear();  // helpers killed and reaped: nothing ran
    // Every process killed comes to us (the root is our child; the others
    // are orphaned to us): reap them all.
    while (waitpid(-1, nullptr, __WALL) > 0 || errno == EINTR) {
    }
    prctl(PR_SET_CHILD_SUBREAPER, was_subreaper);
    return e;
  };
  if (Status s = await_created(plan, created[0], status_read, pids); !s) return fail(s.error());
  if (Status s = fault_point("restore-forked"); !s) return fail(s.error());
  close(go[1]);  // every process exists: go on
  go[1] = -1;
  // --lazy: each process sends its userfaultfd early in become_image; its
  // helper is forked once it has it (a process failing first closes its
  // end, or the others do in restore_fds: start() fails, not hangs).
  for (size_t i = 0; i < n; i++)
    if (out.tree_lazy[i])
      if (Status s = out.tree_lazy[i]->start(*plan.processes[i].image, *plan.processes[i].view, plan.processes[i].pid); !s)
        return fail(s.error().context("process " + std::to_string(plan.processes[i].pid)));
  std::vector<Handover> handovers;
  for (size_t i = 0; i < n; i++) {
    if (plan.processes[i].zombie) continue;
    auto where = read_tree_verdict(status_read[i], plan.processes[i].pid);
    close(status_read[i]);
    status_read[i] = -1;
    if (!where) return fail(where.error());
    handovers.push_back(handover_of(*plan.processes[i].view, plan.processes[i].pid, *where));
    handovers.back().stopped = handovers.back().stopped || hold_stopped;
  }
  // Kernel quirk: F_SEAL_FUTURE_WRITE refuses a writable shared mapping
  // made after it (mm/memfd.c, EPERM), and another process of the tree
  // may map the same memfd: the late seals go on once every process has
  // reported, that is, has mapped its memory (decision 204).
  for (const TreeProcess &p : plan.processes)
    if (!p.zombie)
      if (Status s = add_late_seals(p.pid, *p.view); !s) return fail(s.error());
  std::string warning;
  if (Status s = fault_point("restore-before-handover"); !s) return fail(s.error());
  if (before_running)
    if (Status s = before_running(static_cast<pid_t>(root)); !s) return fail(s.error());
  if (Status s = hand_over_all(handovers, &warning); !s) return fail(s.error());
  if (!warning.empty()) std::fprintf(stderr, "imgtool restore: warning: %s\n", warning.c_str());
  // Running: its orphans from now on go where the restored program's would.
  prctl(PR_SET_CHILD_SUBREAPER, was_subreaper);
  close_all();
  for (auto &h : out.tree_lazy)
    if (h) CKPT_TRY(h->go());
  out.root = static_cast<pid_t>(root);
  return {};
}

}  // namespace ckpt::reader
