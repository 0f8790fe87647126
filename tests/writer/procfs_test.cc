// The /proc readers (writer/src/procfs.h) on zombies and vanished
// processes, on errors, on our own maps, and on plain files and links.
#include "procfs.h"

#include "child_process.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/auxv.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

namespace ckpt::writer {
namespace {

using ckpt::test::Child;

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
