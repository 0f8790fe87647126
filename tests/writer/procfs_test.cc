// Tests of the /proc readers (writer/src/procfs.h) against real processes:
// a forked child sets known state, says "ready" through a pipe, and the test
// reads that state from outside and checks every value.
#include "procfs.h"

#include "child_process.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
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

// ---- zombies and vanished processes ------------------------------------

TEST(Procfs, ZombieHasNoUmaskLine) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(3);
  // WNOWAIT: wait until it is a zombie but leave it unreaped.
  siginfo_t si{};
  ASSERT_EQ(waitid(P_PID, id_t(pid), &si, WEXITED | WNOWAIT), 0);
  auto st = read_stat(pid);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(st->state, 'Z');
  EXPECT_EQ(st->start_code, 0u);  // no mm any more
  auto ps = read_status(pid);
  EXPECT_TRUE(ps) << ps.error().message();
  auto text = read_file("/proc/" + std::to_string(pid) + "/status");
  ASSERT_TRUE(text);
  EXPECT_EQ(text->find("Umask:"), std::string::npos);  // kernel quirk read_status tolerates
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
}

// The privilege lines: a child with no_new_privs and two allow-all seccomp
// filters, against ourselves without either.
TEST(Procfs, NoNewPrivsAndSeccompLines) {
  Child child([](int in, int out) {
    struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {1, &allow};
    CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, out);
    for (int i = 0; i < 2; i++) CHILD_CHECK(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0, out);
    dprintf(out, "ready\n");
    ckpt::test::serve_commands(in, out, [](char) { return std::string("?"); });
  });
  ASSERT_TRUE(child.started());
  ASSERT_EQ(child.reply(), "ready");
  auto ps = read_status(child.pid());
  ASSERT_TRUE(ps) << ps.error().message();
  EXPECT_EQ(ps->no_new_privs, 1u);
  EXPECT_EQ(ps->seccomp_mode, 2u);
  EXPECT_EQ(ps->seccomp_filters, 2u);
  auto me = read_status(getpid());
  ASSERT_TRUE(me) << me.error().message();
  EXPECT_EQ(me->no_new_privs, 0u);
  EXPECT_EQ(me->seccomp_mode, 0u);
  EXPECT_EQ(me->seccomp_filters, 0u);
}

TEST(Procfs, ErrorsNameThePidAndPath) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  std::string p = "/proc/" + std::to_string(pid) + "/";
  auto st = read_stat(pid);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find(p + "stat"), std::string::npos) << st.error().message();
  EXPECT_NE(st.error().message().find("No such file"), std::string::npos) << st.error().message();
  EXPECT_EQ(st.error().message().find('\n'), std::string::npos);
  auto ps = read_status(pid);
  ASSERT_FALSE(ps);
  EXPECT_NE(ps.error().message().find(p + "status"), std::string::npos);
  auto maps = read_maps(pid);
  ASSERT_FALSE(maps);
  EXPECT_NE(maps.error().message().find(p + "smaps"), std::string::npos);
  auto rl = read_rlimits(pid);
  ASSERT_FALSE(rl);
  EXPECT_NE(rl.error().message().find("pid " + std::to_string(pid)), std::string::npos);
  auto rob = read_robust_list(pid);
  ASSERT_FALSE(rob);
  EXPECT_NE(rob.error().message().find(std::to_string(pid)), std::string::npos);
  auto th = read_posix_timers(pid);
  ASSERT_FALSE(th);
  EXPECT_NE(th.error().message().find(p + "timers"), std::string::npos);
}

// ---- maps of ourselves ---------------------------------------------------

const MapEntry *find_map(const std::vector<MapEntry> &maps, u64 addr) {
  for (const MapEntry &m : maps)
    if (m.start <= addr && addr < m.end) return &m;
  return nullptr;
}

TEST(Procfs, MapsOfSelf) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  // Anonymous: three pages, the last made read-only so the VMA splits.
  auto *anon = static_cast<char *>(
      mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(anon, MAP_FAILED);
  anon[0] = 1;
  ASSERT_EQ(mprotect(anon + 2 * page, page, PROT_READ), 0);

  // A file mapping whose path holds spaces, and one whose file is unlinked.
  char dir_template[] = "/tmp/ckpt procfs XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  std::string spaced = dir + "/with  two spaces.bin";
  std::string gone = dir + "/gone.bin";
  int fd = open(spaced.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, off_t(2 * page)), 0);
  struct stat fst {};
  ASSERT_EQ(fstat(fd, &fst), 0);
  void *shared = mmap(nullptr, page, PROT_READ, MAP_SHARED, fd, off_t(page));
  ASSERT_NE(shared, MAP_FAILED);
  close(fd);
  int gfd = open(gone.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(gfd, 0);
  ASSERT_EQ(ftruncate(gfd, off_t(page)), 0);
  void *gone_map = mmap(nullptr, page, PROT_READ | PROT_EXEC, MAP_PRIVATE, gfd, 0);
  ASSERT_NE(gone_map, MAP_FAILED);
  close(gfd);
  ASSERT_EQ(unlink(gone.c_str()), 0);

  int local = 0;
  auto maps = read_maps(getpid());
  ASSERT_TRUE(maps) << maps.error().message();
  ASSERT_FALSE(maps->empty());
  for (size_t i = 1; i < maps->size(); ++i) EXPECT_LE((*maps)[i - 1].end, (*maps)[i].start);
  for (const MapEntry &m : *maps) {
    EXPECT_LT(m.start, m.end);
    EXPECT_FALSE(m.vmflags.empty()) << m.path;
  }

  const MapEntry *rw = find_map(*maps, u64(uintptr_t(anon)));
  ASSERT_NE(rw, nullptr);
  EXPECT_EQ(rw->start, u64(uintptr_t(anon)));
  EXPECT_EQ(rw->end, u64(uintptr_t(anon + 2 * page)));
  EXPECT_EQ(rw->prot, u32(PROT_READ | PROT_WRITE));
  EXPECT_FALSE(rw->shared);
  EXPECT_EQ(rw->path, "");
  EXPECT_EQ(rw->ino, 0u);
  EXPECT_GE(rw->anonymous_kb, page / 1024);  // the touched page
  EXPECT_TRUE(rw->has_flag("rd"));
  EXPECT_TRUE(rw->has_flag("wr"));
  EXPECT_FALSE(rw->has_flag("ex"));
  const MapEntry *ro = find_map(*maps, u64(uintptr_t(anon + 2 * page)));
  ASSERT_NE(ro, nullptr);
  EXPECT_EQ(ro->start, u64(uintptr_t(anon + 2 * page)));
  EXPECT_EQ(ro->prot, u32(PROT_READ));
  EXPECT_TRUE(ro->has_flag("rd"));
  EXPECT_FALSE(ro->has_flag("wr"));
  EXPECT_EQ(ro->anonymous_kb, 0u);

  const MapEntry *sp = find_map(*maps, u64(uintptr_t(shared)));
  ASSERT_NE(sp, nullptr);
  EXPECT_EQ(sp->path, spaced);
  EXPECT_TRUE(sp->shared);
  EXPECT_EQ(sp->prot, u32(PROT_READ));
  EXPECT_EQ(sp->offset, u64(page));
  EXPECT_EQ(sp->ino, u64(fst.st_ino));
  EXPECT_EQ(sp->dev_major, major(fst.st_dev));
  EXPECT_EQ(sp->dev_minor, minor(fst.st_dev));
  EXPECT_TRUE(sp->has_flag("sh"));
  EXPECT_TRUE(sp->has_flag("rd"));

  const MapEntry *gm = find_map(*maps, u64(uintptr_t(gone_map)));
  ASSERT_NE(gm, nullptr);
  EXPECT_EQ(gm->path, gone + " (deleted)");
  EXPECT_EQ(gm->prot, u32(PROT_READ | PROT_EXEC));
  EXPECT_TRUE(gm->has_flag("ex"));

  const MapEntry *stack = find_map(*maps, u64(uintptr_t(&local)));
  ASSERT_NE(stack, nullptr);
  EXPECT_EQ(stack->path, "[stack]");
  EXPECT_TRUE(stack->has_flag("gd"));  // grows down
  EXPECT_TRUE(stack->has_flag("rd"));

  const MapEntry *vdso = find_map(*maps, u64(getauxval(AT_SYSINFO_EHDR)));
  ASSERT_NE(vdso, nullptr);
  EXPECT_EQ(vdso->path, "[vdso]");
  EXPECT_EQ(vdso->start, u64(getauxval(AT_SYSINFO_EHDR)));
  EXPECT_NE(vdso->prot & PROT_EXEC, 0u);

  // The code of this test binary is mapped from its file.
  const MapEntry *code = find_map(*maps, u64(uintptr_t(&find_map)));
  ASSERT_NE(code, nullptr);
  auto exe = read_link("/proc/self/exe");
  ASSERT_TRUE(exe) << exe.error().message();
  EXPECT_EQ(code->path, *exe);
  EXPECT_NE(code->prot & PROT_EXEC, 0u);

  munmap(anon, 3 * page);
  munmap(shared, page);
  munmap(gone_map, page);
  unlink(spaced.c_str());
  rmdir(dir.c_str());
}

TEST(Procfs, ReadFileAndLink) {
  auto missing = read_file("/nonexistent/ckpt");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("/nonexistent/ckpt"), std::string::npos);
  auto self = read_link("/proc/self/exe");
  ASSERT_TRUE(self) << self.error().message();
  EXPECT_EQ(self->front(), '/');
  // A /proc file with a reported size of 0 is read whole.
  auto maps = read_file("/proc/self/maps");
  ASSERT_TRUE(maps) << maps.error().message();
  EXPECT_GT(maps->size(), 100u);
  EXPECT_EQ(maps->back(), '\n');
  // A link longer than the first 256-byte buffer.
  char dir_template[] = "/tmp/ckpt-link-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string target(1000, 'x');
  std::string link = std::string(dir_template) + "/l";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  auto got = read_link(link);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(*got, target);
  unlink(link.c_str());
  rmdir(dir_template);
}

}  // namespace
}  // namespace ckpt::writer
