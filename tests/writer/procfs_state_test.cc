// read_process_state() and friends (writer/src/procfs.h) against a real
// process: a forked child sets known state, says "ready" through a pipe,
// and the test reads that state from outside and checks every value; and
// a comm with the characters that break naive parsers.
#include "procfs.h"

#include "child_process.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/auxv.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>

namespace ckpt::writer {
namespace {

using ckpt::test::Child;

u64 sigbit(int sig) { return u64(1) << (sig - 1); }

pid_t my_tid() { return pid_t(syscall(SYS_gettid)); }

// ---- a child with known process state ----------------------------------

int g_thread_pipe[2];

void *named_thread_main(void *) {
  pid_t tid = my_tid();
  (void)!write(g_thread_pipe[1], &tid, sizeof tid);
  for (;;) pause();
  return nullptr;
}

void on_sigusr2(int) {}

/// Sets umask, rlimits, session, names, signal state, personality, a second
/// thread, three POSIX timers and a grandchild; replies
/// "ready TID GRANDCHILD PERSONA TIMER1 TIMER2 TIMER3".
void state_child(int in, int out) {
  umask(027);
  rlimit rl{500, 600};
  CHILD_CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, out);
  CHILD_CHECK(setsid() == getpid(), out);
  CHILD_CHECK(prctl(PR_SET_NAME, "ckpt-test") == 0, out);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  CHILD_CHECK(sigprocmask(SIG_BLOCK, &set, nullptr) == 0, out);
  CHILD_CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR, out);
  struct sigaction sa {};
  sa.sa_handler = on_sigusr2;
  CHILD_CHECK(sigaction(SIGUSR2, &sa, nullptr) == 0, out);
  int persona = personality(0xffffffff);
  CHILD_CHECK(personality(unsigned(persona) | ADDR_NO_RANDOMIZE) != -1, out);
  persona = personality(0xffffffff);

  CHILD_CHECK(pipe2(g_thread_pipe, O_CLOEXEC) == 0, out);
  pthread_t th;
  CHILD_CHECK(pthread_create(&th, nullptr, named_thread_main, nullptr) == 0, out);
  pid_t tid = 0;
  CHILD_CHECK(read(g_thread_pipe[0], &tid, sizeof tid) == sizeof tid, out);
  CHILD_CHECK(pthread_setname_np(th, "ckpt-thr") == 0, out);

  sigevent ev{};
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = SIGUSR2;
  ev.sigev_value.sival_ptr = reinterpret_cast<void *>(0x1234);
  timer_t t1, t2, t3;
  CHILD_CHECK(timer_create(CLOCK_MONOTONIC, &ev, &t1) == 0, out);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = SIGUSR1;
  ev.sigev_value.sival_ptr = reinterpret_cast<void *>(0x5678);
  ev._sigev_un._tid = tid;
  CHILD_CHECK(timer_create(CLOCK_REALTIME, &ev, &t2) == 0, out);
  ev.sigev_notify = SIGEV_NONE;
  ev.sigev_signo = 0;
  ev.sigev_value.sival_ptr = nullptr;
  CHILD_CHECK(timer_create(CLOCK_BOOTTIME, &ev, &t3) == 0, out);

  // A grandchild that lives until this child dies (EOF on its pipe).
  int gp[2];
  CHILD_CHECK(pipe(gp) == 0, out);
  pid_t g = fork();
  CHILD_CHECK(g >= 0, out);
  if (g == 0) {
    close(gp[1]);
    close(in);
    close(out);
    char c;
    (void)!read(gp[0], &c, 1);
    _exit(0);
  }
  close(gp[0]);

  dprintf(out, "ready %d %d %d %d %d %d\n", tid, g, persona, int(intptr_t(t1)), int(intptr_t(t2)),
          int(intptr_t(t3)));
  ckpt::test::serve_commands(in, out, [](char) { return std::string("?"); });
}

TEST(Procfs, StateOfChild) {
  Child child(state_child);
  ASSERT_TRUE(child.started());
  std::string r = child.reply();
  int tid = 0, grandchild = 0, persona = 0, t1 = 0, t2 = 0, t3 = 0;
  ASSERT_EQ(sscanf(r.c_str(), "ready %d %d %d %d %d %d", &tid, &grandchild, &persona, &t1, &t2,
                   &t3),
            6)
      << r;
  pid_t pid = child.pid();

  // stat
  auto st = read_stat(pid);
  ASSERT_TRUE(st) << st.error().message();
  auto self = read_stat(getpid());
  ASSERT_TRUE(self) << self.error().message();
  EXPECT_EQ(st->comm, "ckpt-test");
  // Running just after "ready" or already blocked reading commands.
  EXPECT_TRUE(st->state == 'S' || st->state == 'R') << st->state;
  EXPECT_EQ(st->ppid, getpid());
  EXPECT_EQ(st->pgrp, pid);
  EXPECT_EQ(st->session, pid);
  EXPECT_EQ(st->tty_nr, 0);  // setsid() left the controlling terminal
  EXPECT_EQ(st->flags & 0x00200000, 0u);  // not PF_KTHREAD
  EXPECT_EQ(st->num_threads, 2);
  EXPECT_EQ(st->nice, self->nice);
  EXPECT_EQ(st->exit_signal, SIGCHLD);
  // The mm fields are copied by fork().
  EXPECT_NE(st->start_code, 0u);
  EXPECT_LT(st->start_code, st->end_code);
  EXPECT_EQ(st->start_code, self->start_code);
  EXPECT_EQ(st->end_code, self->end_code);
  EXPECT_EQ(st->start_data, self->start_data);
  EXPECT_EQ(st->end_data, self->end_data);
  EXPECT_EQ(st->start_brk, self->start_brk);
  EXPECT_EQ(st->start_stack, self->start_stack);
  EXPECT_EQ(st->arg_start, self->arg_start);
  EXPECT_EQ(st->arg_end, self->arg_end);
  EXPECT_EQ(st->env_start, self->env_start);
  EXPECT_EQ(st->env_end, self->env_end);
  EXPECT_LT(st->arg_start, st->arg_end);
  EXPECT_LE(st->env_start, st->env_end);
  EXPECT_NE(st->start_stack, 0u);
  // Our own start_stack lies in our [stack] mapping.
  auto maps = read_maps(getpid());
  ASSERT_TRUE(maps) << maps.error().message();
  bool stack_ok = false;
  for (const MapEntry &m : *maps)
    if (m.path == "[stack]") stack_ok = m.start <= self->start_stack && self->start_stack < m.end;
  EXPECT_TRUE(stack_ok);

  auto tst = read_stat(pid, tid);
  ASSERT_TRUE(tst) << tst.error().message();
  EXPECT_EQ(tst->comm, "ckpt-thr");
  EXPECT_EQ(tst->ppid, getpid());
  EXPECT_EQ(tst->num_threads, 2);

  // status
  auto ps = read_status(pid);
  ASSERT_TRUE(ps) << ps.error().message();
  auto me = read_status(getpid());
  ASSERT_TRUE(me) << me.error().message();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(ps->uid[i], getuid()) << i;
    EXPECT_EQ(ps->gid[i], getgid()) << i;
  }
  std::vector<gid_t> groups(size_t(getgroups(0, nullptr)));
  ASSERT_EQ(getgroups(int(groups.size()), groups.data()), int(groups.size()));
  std::vector<u32> want_groups(groups.begin(), groups.end());
  std::sort(want_groups.begin(), want_groups.end());
  std::vector<u32> got_groups = ps->groups;
  std::sort(got_groups.begin(), got_groups.end());
  EXPECT_EQ(got_groups, want_groups);
  EXPECT_EQ(ps->cap_inh, me->cap_inh);
  EXPECT_EQ(ps->cap_prm, me->cap_prm);
  EXPECT_EQ(ps->cap_eff, me->cap_eff);
  EXPECT_EQ(ps->cap_bnd, me->cap_bnd);
  EXPECT_EQ(ps->cap_amb, me->cap_amb);
  EXPECT_NE(ps->cap_bnd, 0u);
  EXPECT_EQ(ps->umask, 027u);
  EXPECT_EQ(ps->tgid, pid);
  EXPECT_EQ(ps->tracer_pid, 0);
  EXPECT_EQ(ps->sig_pnd, 0u);
  EXPECT_EQ(ps->shd_pnd, 0u);
  EXPECT_EQ(ps->sig_blk & (sigbit(SIGUSR1) | sigbit(SIGUSR2)), sigbit(SIGUSR1));
  EXPECT_NE(ps->sig_ign & sigbit(SIGPIPE), 0u);
  EXPECT_NE(ps->sig_cgt & sigbit(SIGUSR2), 0u);
  EXPECT_EQ(ps->sig_cgt & sigbit(SIGPIPE), 0u);

  auto tps = read_status(pid, tid);
  ASSERT_TRUE(tps) << tps.error().message();
  EXPECT_EQ(tps->tgid, pid);
  EXPECT_EQ(tps->umask, 027u);

  // threads and children
  auto threads = list_threads(pid);
  ASSERT_TRUE(threads) << threads.error().message();
  EXPECT_EQ(*threads, (std::vector<pid_t>{pid, tid}));
  auto kids = list_children(pid);
  ASSERT_TRUE(kids) << kids.error().message();
  EXPECT_EQ(*kids, std::vector<pid_t>{grandchild});
  auto my_kids = list_children(getpid());
  ASSERT_TRUE(my_kids) << my_kids.error().message();
  EXPECT_NE(std::find(my_kids->begin(), my_kids->end(), pid), my_kids->end());

  // rlimits: NOFILE as set, the rest inherited from us.
  auto rl = read_rlimits(pid);
  ASSERT_TRUE(rl) << rl.error().message();
  auto my_rl = read_rlimits(getpid());
  ASSERT_TRUE(my_rl) << my_rl.error().message();
  ASSERT_EQ(rl->size(), 16u);
  for (unsigned i = 0; i < rl->size(); ++i) {
    const img::RlimitRecord &x = (*rl)[i];
    EXPECT_EQ(x.pid, pid);
    EXPECT_EQ(x.resource, i);
    if (i == RLIMIT_NOFILE) {
      EXPECT_EQ(x.cur, 500u);
      EXPECT_EQ(x.max, 600u);
    } else {
      EXPECT_EQ(x.cur, (*my_rl)[i].cur) << "resource " << i;
      EXPECT_EQ(x.max, (*my_rl)[i].max) << "resource " << i;
    }
  }
  rlimit stack_rl;
  ASSERT_EQ(getrlimit(RLIMIT_STACK, &stack_rl), 0);
  EXPECT_EQ((*my_rl)[RLIMIT_STACK].cur, u64(stack_rl.rlim_cur));

  // POSIX timers, sorted by id.
  auto timers = read_posix_timers(pid);
  ASSERT_TRUE(timers) << timers.error().message();
  ASSERT_EQ(timers->size(), 3u);
  EXPECT_TRUE(std::is_sorted(timers->begin(), timers->end(),
                             [](auto &a, auto &b) { return a.id < b.id; }));
  auto timer = [&](int id) -> const PosixTimerInfo * {
    for (const PosixTimerInfo &t : *timers)
      if (t.id == id) return &t;
    return nullptr;
  };
  const PosixTimerInfo *a = timer(t1), *b = timer(t2), *c = timer(t3);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->signo, SIGUSR2);
  EXPECT_EQ(a->sigev_value, 0x1234u);
  EXPECT_EQ(a->notify, SIGEV_SIGNAL);
  EXPECT_EQ(a->notify_tid, 0);
  EXPECT_EQ(a->clock_id, CLOCK_MONOTONIC);
  EXPECT_EQ(b->signo, SIGUSR1);
  EXPECT_EQ(b->sigev_value, 0x5678u);
  EXPECT_EQ(b->notify, SIGEV_THREAD_ID);
  EXPECT_EQ(b->notify_tid, tid);
  EXPECT_EQ(b->clock_id, CLOCK_REALTIME);
  EXPECT_EQ(c->notify, SIGEV_NONE);
  EXPECT_EQ(c->sigev_value, 0u);
  EXPECT_EQ(c->clock_id, CLOCK_BOOTTIME);

  // personality, auxv and cmdline (the last two copied by fork).
  auto pers = read_personality(pid);
  ASSERT_TRUE(pers) << pers.error().message();
  EXPECT_EQ(*pers, u32(persona));
  EXPECT_NE(*pers & ADDR_NO_RANDOMIZE, 0u);
  auto auxv = read_auxv(pid);
  ASSERT_TRUE(auxv) << auxv.error().message();
  auto my_auxv = read_auxv(getpid());
  ASSERT_TRUE(my_auxv) << my_auxv.error().message();
  EXPECT_EQ(*auxv, *my_auxv);
  ASSERT_GE(auxv->size(), 2u);
  EXPECT_EQ((*auxv)[auxv->size() - 2], u64(AT_NULL));
  bool saw_pagesz = false;
  for (size_t i = 0; i + 1 < auxv->size(); i += 2)
    if ((*auxv)[i] == AT_PAGESZ) saw_pagesz = (*auxv)[i + 1] == u64(sysconf(_SC_PAGESIZE));
  EXPECT_TRUE(saw_pagesz);
  auto cmd = read_cmdline(pid);
  ASSERT_TRUE(cmd) << cmd.error().message();
  auto my_cmd = read_cmdline(getpid());
  ASSERT_TRUE(my_cmd) << my_cmd.error().message();
  EXPECT_EQ(*cmd, *my_cmd);
  ASSERT_FALSE(cmd->empty());
  EXPECT_EQ(cmd->back(), '\0');

  // Robust futex lists: glibc registers one per thread, and re-registers
  // the forking thread's after fork(), so the child's main thread has ours.
  auto rob = read_robust_list(pid);
  ASSERT_TRUE(rob) << rob.error().message();
  auto my_rob = read_robust_list(my_tid());
  ASSERT_TRUE(my_rob) << my_rob.error().message();
  EXPECT_EQ(rob->head, my_rob->head);
  EXPECT_EQ(rob->len, 24u);  // sizeof(struct robust_list_head)
  auto trob = read_robust_list(tid);
  ASSERT_TRUE(trob) << trob.error().message();
  EXPECT_NE(trob->head, 0u);
  EXPECT_NE(trob->head, rob->head);
  EXPECT_EQ(trob->len, 24u);
}

// ---- comm with the characters that break naive parsers -----------------

void comm_child(int in, int out, const char *name) {
  CHILD_CHECK(prctl(PR_SET_NAME, name) == 0, out);
  dprintf(out, "ready\n");
  ckpt::test::serve_commands(in, out, [](char) { return std::string("?"); });
}

TEST(Procfs, StatCommWithParentheses) {
  for (const char *name : {"a) (b", "x\ny) z (", ") ) )"}) {
    Child child([&](int in, int out) { comm_child(in, out, name); });
    ASSERT_TRUE(child.started());
    ASSERT_EQ(child.reply(), "ready");
    auto st = read_stat(child.pid());
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(st->comm, name);
    EXPECT_TRUE(st->state == 'S' || st->state == 'R') << st->state;
    EXPECT_EQ(st->ppid, getpid());
    EXPECT_EQ(st->pgrp, getpgrp());
    EXPECT_EQ(st->session, getsid(0));
    EXPECT_EQ(st->num_threads, 1);
    EXPECT_EQ(st->exit_signal, SIGCHLD);
    // status escapes the name; it must still parse.
    auto ps = read_status(child.pid());
    ASSERT_TRUE(ps) << ps.error().message();
    EXPECT_EQ(ps->tgid, child.pid());
  }
}

// ---- children in the order they were forked, not by pid ---------------

// Sets the pid namespace's last pid (the next fork gets last + 1).
bool set_last_pid(int last) {
  int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::string text = std::to_string(last);
  bool ok = write(fd, text.data(), text.size()) == ssize_t(text.size());
  close(fd);
  return ok;
}

// Pid 1 of a pid namespace of its own, its /proc mounted: forks a child
// that gets pid 100, then one that gets pid 50 (as after a wrap of the pid
// counter), and writes what list_children_by_thread(1) gives to `out`.
[[noreturn]] void fork_children_across_a_wrap(int out) {
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mount("proc", "/proc", "proc", 0, nullptr) != 0) {
    dprintf(out, "mount: %s\n", strerror(errno));
    _exit(1);
  }
  std::vector<pid_t> kids;
  for (int last : {99, 49}) {
    if (!set_last_pid(last)) {
      dprintf(out, "ns_last_pid: %s\n", strerror(errno));
      _exit(1);
    }
    pid_t kid = fork();
    if (kid == 0) {
      pause();
      _exit(0);
    }
    kids.push_back(kid);
  }
  auto listed = list_children_by_thread(1);
  if (!listed) dprintf(out, "%s\n", listed.error().message().c_str());
  else
    for (const ChildOf &c : *listed) dprintf(out, "%d(%d) ", c.child, c.creator_tid);
  _exit(0);  // pid 1 leaving ends its namespace's other processes
}

// The children as the kernel lists them (the order they were forked in),
// which the restore forks them in; sorted by pid, a tree whose pids
// wrapped came back with its children listed in another order.
TEST(Procfs, ChildrenInTheOrderTheyWereForkedAcrossAPidWrap) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pid_t helper = fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) {
      dprintf(p[1], "unshare: %s\n", strerror(errno));
      _exit(1);
    }
    pid_t init = fork();  // pid 1 of the new namespace
    if (init == 0) fork_children_across_a_wrap(p[1]);
    int st;
    while (waitpid(init, &st, 0) < 0 && errno == EINTR) {
    }
    _exit(0);
  }
  close(p[1]);
  std::string got;
  char buf[256];
  for (ssize_t n; (n = read(p[0], buf, sizeof buf)) > 0;) got.append(buf, n);
  close(p[0]);
  int st;
  ASSERT_EQ(waitpid(helper, &st, 0), helper);
  // A pid namespace of one's own needs CAP_SYS_ADMIN (the suite runs as root).
  if (got == "unshare: Operation not permitted\n") GTEST_SKIP() << "no CAP_SYS_ADMIN: cannot make a pid namespace";
  EXPECT_EQ(got, "100(1) 50(1) ");
}

}  // namespace
}  // namespace ckpt::writer
