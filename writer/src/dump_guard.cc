#include "dump_guard.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <set>
#include <sstream>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "procfs.h"
#include "dirty_tracking.h"
#include "procfs_text.h"
#include "snapshot.h"
#include "snapshot_cgroup.h"

namespace ckpt::writer {

using namespace img;

namespace {

// What the journal says imgtool did (dump_guard.h).
struct Journal {
  std::map<pid_t, bool> armed;  ///< pid -> it had a tracker before
  /// pid -> the userfaultfds and epoch-named memfds it held when arming
  /// began (a program's own, kept only with --allow-unrestorable; an
  /// earlier dump's tracker and epoch)
  std::map<pid_t, std::set<int>> uffds_before;
  /// pid -> the probe-like mappings it had before a probe (probe_pages)
  std::map<pid_t, std::set<u64>> probes_before;
  std::string cgroup;
  std::set<pid_t> cgroup_opened;
  std::map<pid_t, std::vector<pid_t>> copies;
  bool committed = false;
  bool ended = false;  ///< imgtool, alive, asks for the undo now
  std::string partial;

  void take(const char *bytes, size_t n) {
    partial.append(bytes, n);
    size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      std::istringstream line(partial.substr(0, nl));
      partial.erase(0, nl + 1);
      char what = 0;
      line >> what;
      long a = 0, b = 0;
      switch (what) {
        case 'A':
          if (line >> a >> b) {
            armed[pid_t(a)] = b != 0;
            auto &before = uffds_before[pid_t(a)];
            for (long fd; line >> fd;) before.insert(int(fd));
          }
          break;
        case 'a':
          // Arming settled and the process runs: an unmarked userfaultfd
          // is the program's from now on (uffds_before unknown: none is
          // closed as "unmarked new").
          if (line >> a) uffds_before.erase(pid_t(a));
          break;
        case 'M':
          if (line >> a) {
            auto &before = probes_before[pid_t(a)];
            for (unsigned long long at; line >> std::hex >> at;) before.insert(u64(at));
          }
          break;
        case 'G':
          line >> std::ws;
          std::getline(line, cgroup);
          break;
        case 'F':
          if (line >> a) cgroup_opened.insert(pid_t(a));
          break;
        case 'C':
          if (line >> a >> b) copies[pid_t(a)].push_back(pid_t(b));
          break;
        case 'K':
          committed = true;
          break;
        case 'E':
          ended = true;
          break;
      }
    }
  }
};

// Reads what the (non-blocking) journal holds now; true at EOF.
bool drain(int fd, Journal &j) {
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      j.take(buf, size_t(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n == 0;
  }
}

// The start of each mapping of pid that looks like process_settings.cc's
// probe: 4 KiB, ---s, shared anonymous memory ("/dev/zero (deleted)").
std::set<u64> probe_pages(pid_t pid) {
  std::set<u64> out;
  auto maps = read_maps(pid, /*brief=*/true);
  if (!maps) return out;
  for (const MapEntry &m : *maps)
    if (m.end - m.start == kPageSize && m.prot == 0 && m.shared && m.path == "/dev/zero (deleted)") out.insert(m.start);
  return out;
}

// Each fd of pid with what its /proc/PID/fd link names ("" where it
// cannot be read: the fd was closed meanwhile); none if pid is gone.
std::vector<std::pair<int, std::string>> fd_links(pid_t pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  std::vector<std::pair<int, std::string>> out;
  auto fds = procfs_text::list_numeric_dir(dir);
  if (!fds) return out;
  for (int fd : *fds) {
    auto link = read_link(dir + "/" + std::to_string(fd));
    out.emplace_back(fd, link ? *link : std::string());
  }
  return out;
}

// The fd flags fdinfo shows (octal), or 0.
long fd_flags(pid_t pid, int fd) {
  auto info = read_file("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
  if (!info) return 0;
  size_t at = info->find("flags:");
  return at == std::string::npos ? 0 : std::strtol(info->c_str() + at + 6, nullptr, 8);
}

// The fds of pid to close: trackers and their epoch memfds (marked
// O_APPEND, as take_tracker_fd knows them, when `trackers`), one of those
// kinds the pid did not hold when arming began and not marked yet (imgtool
// died between the injected userfaultfd() or memfd_create() and its mark:
// the new fd is the lowest free one, not the tracker slot), and fds on the
// snapshot cgroup.
std::vector<int> fds_to_close(pid_t pid, bool trackers, const std::set<int> *uffds_before,
                              const std::string &cgroup) {
  std::vector<int> fds;
  for (const auto &[fd, link] : fd_links(pid)) {
    bool uffd = tracker_kind(link);
    bool marked = uffd && (fd_flags(pid, fd) & O_APPEND);
    bool unmarked_new = uffd && !marked && uffds_before && !uffds_before->count(fd);
    bool tracker = (trackers && marked) || unmarked_new;
    bool on_cgroup = !cgroup.empty() && link == cgroup;
    if (tracker || on_cgroup) fds.push_back(fd);
  }
  return fds;
}

// Undoes, in each process the journal names, what the dump did there.
void undo(const Journal &j) {
  std::set<pid_t> pids;
  for (const auto &[pid, had] : j.armed)
    if (!j.committed) pids.insert(pid);
  for (pid_t pid : j.cgroup_opened) pids.insert(pid);
  for (const auto &[pid, before] : j.probes_before) pids.insert(pid);
  for (const auto &[pid, copies] : j.copies) pids.insert(pid);
  // imgtool killed (it did not ask for the undo itself) may have died with
  // a syscall injected in a target: the thread, let go, finishes it on its
  // own (a clone3 makes its copy, a userfaultfd() its fd, an mmap the probe
  // page) and only then returns through its return frame. So the target is
  // frozen first, which waits for that syscall's end, and only then looked
  // at; a dump that failed with imgtool alive had released it already.
  const bool died = !j.ended;
  for (pid_t pid : pids) {
    std::vector<pid_t> copies;
    std::vector<int> fds;
    std::vector<u64> probes;
    auto look = [&] {
      copies.clear();
      // Copies still children of pid: killed first (reaped below).
      std::set<pid_t> candidates;
      if (auto it = j.copies.find(pid); it != j.copies.end()) candidates.insert(it->second.begin(), it->second.end());
      // A copy imgtool died too early to journal (between the injected
      // clone3's return and its 'C' line): every process in our frozen
      // cgroup is a copy, born there by CLONE_INTO_CGROUP.
      if (j.cgroup_opened.count(pid) && !j.cgroup.empty())
        if (auto procs = read_file(j.cgroup + "/cgroup.procs")) {
          std::istringstream in(*procs);
          for (long p; in >> p;) candidates.insert(pid_t(p));
        }
      for (pid_t copy : candidates) {
        auto st = read_stat(copy);
        if (!st || st->ppid != pid) continue;
        kill_copy(copy, -1);
        copies.push_back(copy);
      }
      auto armed = j.armed.find(pid);
      bool trackers = !j.committed && armed != j.armed.end() && !armed->second;
      auto before = j.uffds_before.find(pid);
      const std::set<int> *uffds_before = !j.committed && before != j.uffds_before.end() ? &before->second : nullptr;
      fds = fds_to_close(pid, trackers, uffds_before, j.cgroup_opened.count(pid) ? j.cgroup : std::string());
      // A probe page imgtool died before unmapping.
      probes.clear();
      if (auto it = j.probes_before.find(pid); it != j.probes_before.end())
        for (u64 at : probe_pages(pid))
          if (!it->second.count(at)) probes.push_back(at);
    };
    auto act = [&](Injector &inj) -> Status {
      for (int fd : fds) {
        auto r = inj.call(SYS_close, {u64(fd)});
        if (!r) return r.error();
      }
      for (u64 at : probes) (void)inj.call(SYS_munmap, {at, kPageSize});
      for (pid_t copy : copies) (void)reap_with(inj, pid, copy);
      return {};
    };
    if (died) {
      (void)inject_in_refrozen(pid, [&](Injector &inj) -> Status {
        look();
        return act(inj);
      });
      continue;
    }
    look();
    if (fds.empty() && copies.empty() && probes.empty()) continue;  // nothing left here: no freeze
    (void)inject_in_refrozen(pid, act);
  }
  if (!j.cgroup.empty()) remove_cgroup(j.cgroup);
}

// Lets imgtool go on from a stop the guard's trace put it in.
void resume(pid_t imgtool, int status) {
  int sig = WSTOPSIG(status), event = (status >> 16) & 0xff;
  if (event == PTRACE_EVENT_STOP) {
    // A group stop (Ctrl-Z of imgtool) is kept with LISTEN, as a stop;
    // any other event stop goes on.
    bool job_control = sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
    ptrace(job_control ? PTRACE_LISTEN : PTRACE_CONT, imgtool, 0, 0);
  } else {
    // A signal-delivery stop: the signal goes through.
    ptrace(PTRACE_CONT, imgtool, 0, event == 0 ? sig : 0);
  }
}

[[noreturn]] void guard_main(pid_t imgtool, int journal, int ready, int granted) {
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU}) signal(sig, SIG_IGN);
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, SIGCHLD);  // imgtool stopped or died (we trace it)
  sigaddset(&wake, SIGUSR1);  // imgtool wrote its last journal line
  sigprocmask(SIG_BLOCK, &wake, nullptr);
  prctl(PR_SET_NAME, "imgtool-guard");
  // Above 5 first, so that no dup2 below closes one still to be moved.
  journal = fcntl(journal, F_DUPFD, 6);
  ready = fcntl(ready, F_DUPFD, 6);
  granted = fcntl(granted, F_DUPFD, 6);
  // Hold nothing of imgtool's open: a reader of "-o -" must see EOF when
  // imgtool is done, not when we are.
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, 0);
    dup2(null, 1);
  }
  dup2(journal, 3);
  dup2(ready, 4);
  dup2(granted, 5);
  journal = 3;
  ready = 4;
  granted = 5;
  syscall(SYS_close_range, 6, ~0u, 0);
  fcntl(journal, F_SETFL, O_NONBLOCK);
  // Imgtool names us its ptracer first (DumpGuard::start); EOF means it
  // could not, and the seize below says why.
  char byte;
  while (read(granted, &byte, 1) < 0 && errno == EINTR) {
  }
  close(granted);
  if (ptrace(PTRACE_SEIZE, imgtool, 0, 0) < 0) {
    int e = errno;
    if (write(ready, &e, sizeof e) < 0) {
    }
    _exit(1);
  }
  int ok = 0;
  if (write(ready, &ok, sizeof ok) < 0) {
  }
  close(ready);
  Journal j;
  bool dead = false;
  for (;;) {
    bool eof = drain(journal, j);
    if (j.ended) break;
    siginfo_t si{};
    if (waitid(P_PID, id_t(imgtool), &si, WEXITED | WSTOPPED | WNOHANG | WNOWAIT | __WALL) < 0) {
      dead = errno != EINTR;  // ECHILD: no longer ours to wait for
      if (dead) break;
      continue;
    }
    if (si.si_pid == imgtool) {
      if (si.si_code == CLD_EXITED || si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) {
        dead = true;
        break;
      }
      int status = 0;
      if (waitpid(imgtool, &status, __WALL | WNOHANG) == imgtool && WIFSTOPPED(status)) resume(imgtool, status);
      continue;
    }
    if (eof && kill(imgtool, 0) < 0) {
      dead = true;
      break;
    }
    sigwaitinfo(&wake, nullptr);
  }
  drain(journal, j);
  undo(j);
  // Only now may imgtool's parent see it gone. Our exit detaches it: a
  // zombie tracee is handed to its real parent then (kernel/ptrace.c,
  // __ptrace_detach, called from exit_notify under tasklist_lock), in the
  // same step that makes us a zombie, so no one sees imgtool gone while
  // we still run. An imgtool still alive (the "E" case) just goes on.
  (void)dead;
  _exit(0);
}

}  // namespace

// The guard of the dump running now (one dump at a time per imgtool).
static DumpGuard *g_active = nullptr;
DumpGuard *DumpGuard::active() { return g_active; }

Expected<std::unique_ptr<DumpGuard>> DumpGuard::start() {
  int journal[2], ready[2], granted[2];
  if (pipe2(journal, O_CLOEXEC) < 0) return make_error("pipe: %s", strerror(errno));
  if (pipe2(ready, O_CLOEXEC) < 0) {
    int e = errno;
    close(journal[0]);
    close(journal[1]);
    return make_error("pipe: %s", strerror(e));
  }
  if (pipe2(granted, O_CLOEXEC) < 0) {
    int e = errno;
    for (int fd : {journal[0], journal[1], ready[0], ready[1]}) close(fd);
    return make_error("pipe: %s", strerror(e));
  }
  // Every ptrace stop of the target sends us SIGCHLD; traced, each would
  // be a signal-delivery stop for the guard to resume. Blocked, none is.
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigset_t before;
  sigprocmask(SIG_BLOCK, &chld, &before);
  bool chld_was_blocked = sigismember(&before, SIGCHLD);
  pid_t self = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    close(journal[1]);
    close(ready[0]);
    close(granted[1]);
    guard_main(self, journal[0], ready[1], granted[0]);
  }
  int e = errno;
  close(journal[0]);
  close(ready[1]);
  close(granted[0]);
  if (pid > 0) {
    // Kernel quirk (Yama, ptrace_scope 1, Ubuntu's default): a process may
    // trace only its descendants unless the tracee names it with
    // PR_SET_PTRACER; the guard is our child tracing us. Without Yama this
    // says EINVAL, harmlessly; with ptrace_scope 2 or 3 the seize fails and
    // the dump goes on unguarded, saying why (DECISIONS 180).
    prctl(PR_SET_PTRACER, static_cast<unsigned long>(pid), 0, 0, 0);
    char go = 1;
    if (write(granted[1], &go, 1) < 0) {
    }
  }
  close(granted[1]);
  auto unblock = [&] {
    if (!chld_was_blocked) sigprocmask(SIG_UNBLOCK, &chld, nullptr);
  };
  if (pid < 0) {
    close(journal[1]);
    close(ready[0]);
    unblock();
    return make_error("cannot start the dump guard: %s", strerror(e));
  }
  int answer = -1;
  ssize_t n;
  while ((n = read(ready[0], &answer, sizeof answer)) < 0 && errno == EINTR) {
  }
  close(ready[0]);
  if (n != ssize_t(sizeof answer) || answer != 0) {
    close(journal[1]);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    unblock();
    return make_error("the dump guard cannot trace imgtool: %s",
                      n == ssize_t(sizeof answer) ? strerror(answer) : "it died");
  }
  std::unique_ptr<DumpGuard> g(new DumpGuard());
  g->pid_ = pid;
  g->journal_ = journal[1];
  g->chld_was_blocked_ = chld_was_blocked;
  g_active = g.get();
  return g;
}

void DumpGuard::note(const std::string &line) {
  // A few dozen bytes a line, far below the pipe's 64 KiB: never blocks.
  if (journal_ >= 0 && write(journal_, line.data(), line.size()) < 0) {
  }
}

void DumpGuard::arming_settled(pid_t pid) { note("a " + std::to_string(pid) + "\n"); }

void DumpGuard::arming(pid_t pid, bool had_one) {
  // The userfaultfds and epoch memfds it holds now (frozen: none can
  // appear but ours until arming_settled, when the process runs again).
  std::string line = "A " + std::to_string(pid) + " " + (had_one ? "1" : "0");
  for (const auto &[fd, link] : fd_links(pid))
    if (tracker_kind(link)) line += " " + std::to_string(fd);
  note(line + "\n");
}
void DumpGuard::probing(pid_t pid) {
  std::string line = "M " + std::to_string(pid);
  char hex[32];
  for (u64 at : probe_pages(pid)) {
    std::snprintf(hex, sizeof hex, " %llx", (unsigned long long)at);
    line += hex;
  }
  note(line + "\n");
}

void DumpGuard::snapshot_cgroup(const std::string &path) { note("G " + path + "\n"); }
void DumpGuard::opening_cgroup_in(pid_t pid) { note("F " + std::to_string(pid) + "\n"); }
void DumpGuard::copy_made(pid_t pid, pid_t copy) {
  note("C " + std::to_string(pid) + " " + std::to_string(copy) + "\n");
}
void DumpGuard::commit() {
  committed_ = true;
  note("K\n");
}

DumpGuard::~DumpGuard() {
  if (g_active == this) g_active = nullptr;
  note("E\n");
  kill(pid_, SIGUSR1);
  while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  prctl(PR_SET_PTRACER, 0, 0, 0, 0);  // no ptracer named any more
  close(journal_);
  if (!chld_was_blocked_) {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_UNBLOCK, &chld, nullptr);
  }
}

}  // namespace ckpt::writer
