// read_fds() (writer/src/fds.h) against a real child that opens one fd of
// every kind at a fixed number, reports "ready", and then proves on request
// that the bytes buffered in its pipes were not consumed.
#include "fds_helpers.h"

namespace ckpt::writer {
namespace {

using namespace fdtest;

// ---- one fd of every kind ------------------------------------------------

struct Paths {
  std::string dir, a, b, unlinked, fifo1, fifo2, fake_deleted;
};

const std::string kUnlinkedContent = pattern(10000, 3);

void table_child(int in, int out, const Paths &p, int p2_read) {
  isolate_fds(in, out, {{p2_read, 107}});
  place(open(p.a.c_str(), O_RDWR), 100);
  CHILD_CHECK(lseek(100, 1234, SEEK_SET) == 1234, kOut);
  CHILD_CHECK(dup2(100, 101) == 101, kOut);  // shares 100's open file description
  place(open(p.a.c_str(), O_RDONLY), 102);   // same file, a description of its own
  place(open(p.b.c_str(), O_WRONLY | O_APPEND), 103);
  place(open(p.a.c_str(), O_RDONLY | O_CLOEXEC), 104, true);

  int p1[2];
  CHILD_CHECK(pipe(p1) == 0, kOut);
  place(p1[0], 105);
  place(p1[1], 106);
  CHILD_CHECK(write(106, "hello", 5) == 5, kOut);
  // 107: the read end of a pipe the test filled with "world" and closed.

  int p3[2];
  CHILD_CHECK(pipe(p3) == 0, kOut);
  CHILD_CHECK(write(p3[1], "xyz", 3) == 3, kOut);
  place(p3[1], 108);
  close(p3[0]);  // only the write end is left anywhere; "xyz" stays buffered

  int u = open(p.unlinked.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  CHILD_CHECK(u >= 0, kOut);
  CHILD_CHECK(ckpt::test::write_all(u, kUnlinkedContent), kOut);
  CHILD_CHECK(unlink(p.unlinked.c_str()) == 0, kOut);
  place(u, 109);

  place(open(p.fifo1.c_str(), O_RDWR), 110);  // O_RDWR: opening never waits
  CHILD_CHECK(write(110, "fifodata", 8) == 8, kOut);
  int both = open(p.fifo2.c_str(), O_RDWR);
  CHILD_CHECK(both >= 0, kOut);
  place(open(p.fifo2.c_str(), O_WRONLY), 111);  // a reader exists: no wait
  CHILD_CHECK(write(111, "fifo2", 5) == 5, kOut);
  close(both);  // only the write end is left; the FIFO keeps its bytes

  place(eventfd(7, 0), 112);
  int sv[2];
  CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, kOut);
  place(sv[0], 113);
  place(sv[1], 114);
  place(open("/dev/null", O_RDWR), 115);
  place(open(p.dir.c_str(), O_RDONLY | O_DIRECTORY), 116);
  int m = memfd_create("ckpt-memfd", 0);
  CHILD_CHECK(m >= 0 && write(m, "memfd!", 6) == 6, kOut);
  place(m, 117);
  place(epoll_create1(0), 118);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  place(signalfd(-1, &mask, 0), 119);
  place(timerfd_create(CLOCK_MONOTONIC, 0), 120);
  place(inotify_init1(0), 121);
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  CHILD_CHECK(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0, kOut);
  std::string slave = ptsname(master);
  place(master, 122);
  place(open(slave.c_str(), O_RDWR | O_NOCTTY), 123);
  int p4[2];
  CHILD_CHECK(pipe(p4) == 0, kOut);
  place(p4[0], 125);
  place(p4[1], 126);
  place(open(p.fake_deleted.c_str(), O_RDONLY), 127);
  place(open(p.fifo1.c_str(), O_PATH), 124);  // a FIFO named but not opened

  ckpt::test::write_all(kOut, "ready\n");
  ckpt::test::serve_commands(kIn, kOut, [](char c) -> std::string {
    if (c != 'r') return "?";
    return read_now(105) + "|" + read_now(107) + "|" + read_now(110) + "|" + read_now(125);
  });
}

TEST(Fds, TableOfChild) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  Paths p;
  p.dir = tmp.path();
  p.a = tmp.path() + "/a";
  p.b = tmp.path() + "/b file";
  p.unlinked = tmp.path() + "/unlinked";
  p.fifo1 = tmp.path() + "/fifo1";
  p.fifo2 = tmp.path() + "/fifo 2";
  p.fake_deleted = tmp.path() + "/x (deleted)";
  ASSERT_TRUE(write_file(p.a, pattern(5000, 1)));
  ASSERT_TRUE(write_file(p.b, "b\n"));
  ASSERT_TRUE(write_file(p.fake_deleted, "still here"));
  ASSERT_EQ(mkfifo(p.fifo1.c_str(), 0600), 0);
  ASSERT_EQ(mkfifo(p.fifo2.c_str(), 0600), 0);
  int p2[2];
  ASSERT_EQ(pipe2(p2, O_CLOEXEC), 0);
  ASSERT_EQ(write(p2[1], "world", 5), 5);

  Child child([&](int in, int out) { table_child(in, out, p, p2[0]); });
  close(p2[0]);
  close(p2[1]);
  ASSERT_TRUE(child.started());
  ASSERT_EQ(child.reply(), "ready");
  pid_t pid = child.pid();
  int pidfd = pidfd_open(pid);
  ASSERT_GE(pidfd, 0) << strerror(errno);

  size_t fds_before = count_own_fds();
  auto table = read_fds(pid, pidfd);
  EXPECT_EQ(count_own_fds(), fds_before);  // every fd read_fds opened is closed
  close(pidfd);
  ASSERT_TRUE(table) << table.error().message();

  // Exactly the fds the child made, ascending.
  std::vector<int> numbers;
  for (const FdInfo &f : table->fds) numbers.push_back(f.record.fd);
  std::vector<int> want = {0, 1, 2};
  for (int fd = 100; fd <= 127; ++fd) want.push_back(fd);
  want.push_back(kIn);
  want.push_back(kOut);
  EXPECT_EQ(numbers, want);
  for (const FdInfo &f : table->fds) {
    EXPECT_EQ(f.record.pid, pid);
    EXPECT_NE(f.record.file_id, 0u) << f.record.fd;
    EXPECT_EQ(f.record.fd_flags, f.record.fd == 104 ? u32(FD_CLOEXEC) : 0u) << f.record.fd;
    EXPECT_EQ(f.record.open_flags & O_CLOEXEC, 0u) << f.record.fd;
  }
  auto fd = [&](int n) {
    const FdInfo *f = find_fd(*table, n);
    EXPECT_NE(f, nullptr) << "fd " << n;
    static const FdInfo none{};
    return f ? *f : none;
  };
  auto type = [](const FdInfo &f) { return FdType(f.record.type); };

  // Regular files: position, access mode, sharing.
  struct stat sa {};
  ASSERT_EQ(stat(p.a.c_str(), &sa), 0);
  FdInfo f100 = fd(100), f101 = fd(101), f102 = fd(102), f103 = fd(103), f104 = fd(104);
  EXPECT_EQ(type(f100), FdType::Regular);
  EXPECT_EQ(f100.path, p.a);
  EXPECT_EQ(f100.record.pos, 1234u);
  EXPECT_EQ(f100.record.open_flags & O_ACCMODE, u32(O_RDWR));
  EXPECT_EQ(f100.record.dev, u64(sa.st_dev));
  EXPECT_EQ(f100.record.ino, u64(sa.st_ino));
  EXPECT_EQ(f100.record.size, 5000u);
  EXPECT_EQ(f100.record.mode, u32(sa.st_mode));
  EXPECT_EQ(f100.record.mtime_ns, i64(sa.st_mtim.tv_sec) * 1000000000 + sa.st_mtim.tv_nsec);
  EXPECT_EQ(f100.record.flags, 0u);
  EXPECT_TRUE(f100.content.empty());
  EXPECT_EQ(f101.record.file_id, f100.record.file_id);  // dup()
  EXPECT_EQ(f101.record.pos, 1234u);
  EXPECT_NE(f102.record.file_id, f100.record.file_id);  // opened separately
  EXPECT_EQ(f102.record.ino, f100.record.ino);
  EXPECT_EQ(f102.record.pos, 0u);
  EXPECT_EQ(f102.record.open_flags & O_ACCMODE, u32(O_RDONLY));
  EXPECT_EQ(type(f103), FdType::Regular);
  EXPECT_EQ(f103.path, p.b);
  EXPECT_EQ(f103.record.open_flags & O_ACCMODE, u32(O_WRONLY));
  EXPECT_NE(f103.record.open_flags & O_APPEND, 0u);
  EXPECT_EQ(f100.record.open_flags & O_APPEND, 0u);
  EXPECT_NE(f104.record.file_id, f100.record.file_id);
  EXPECT_NE(f104.record.file_id, f102.record.file_id);
  // Every other fd has a description of its own.
  for (const FdInfo &f : table->fds) {
    if (f.record.fd != 100 && f.record.fd != 101) {
      EXPECT_NE(f.record.file_id, f100.record.file_id) << f.record.fd;
    }
  }
  std::vector<u32> ids;
  for (const FdInfo &f : table->fds) ids.push_back(f.record.file_id);
  std::vector<u32> first_seen;
  for (u32 id : ids)
    if (std::find(first_seen.begin(), first_seen.end(), id) == first_seen.end())
      first_seen.push_back(id);
  for (size_t i = 0; i < first_seen.size(); ++i) EXPECT_EQ(first_seen[i], u32(i + 1));

  // A live file whose name ends in " (deleted)" is not unlinked.
  FdInfo f127 = fd(127);
  EXPECT_EQ(type(f127), FdType::Regular);
  EXPECT_EQ(f127.path, p.fake_deleted);
  EXPECT_EQ(f127.record.flags & img::kFdUnlinked, 0u);
  EXPECT_TRUE(f127.content.empty());

  // The unlinked file: flagged, name without the suffix, bytes copied.
  FdInfo f109 = fd(109);
  EXPECT_EQ(type(f109), FdType::Regular);
  EXPECT_EQ(f109.path, p.unlinked);
  EXPECT_EQ(f109.record.flags, u32(img::kFdUnlinked));
  EXPECT_EQ(f109.record.size, kUnlinkedContent.size());
  EXPECT_EQ(f109.record.pos, kUnlinkedContent.size());
  EXPECT_EQ(f109.content, bytes(kUnlinkedContent));
  FdInfo f117 = fd(117);
  EXPECT_EQ(type(f117), FdType::MemFd);
  EXPECT_EQ(f117.path, "/memfd:ckpt-memfd");
  EXPECT_EQ(f117.record.flags, u32(img::kFdUnlinked | img::kFdSeals));
  EXPECT_EQ(f117.record.seals, u32(F_SEAL_SEAL)) << "made without MFD_ALLOW_SEALING";
  EXPECT_EQ(f117.content, bytes("memfd!"));

  // Pipes and FIFOs.
  FdInfo f105 = fd(105), f106 = fd(106), f107 = fd(107), f108 = fd(108), f110 = fd(110),
         f111 = fd(111), f125 = fd(125), f126 = fd(126);
  EXPECT_EQ(type(f105), FdType::PipeRead);
  EXPECT_EQ(type(f106), FdType::PipeWrite);
  EXPECT_EQ(type(f107), FdType::PipeRead);
  EXPECT_EQ(type(f108), FdType::PipeWrite);
  EXPECT_EQ(type(f110), FdType::Fifo);
  EXPECT_EQ(type(f111), FdType::Fifo);
  EXPECT_EQ(f105.path, "pipe:[" + std::to_string(f105.record.ino) + "]");
  EXPECT_EQ(f110.path, p.fifo1);
  EXPECT_EQ(f111.path, p.fifo2);
  EXPECT_EQ(f110.record.open_flags & O_ACCMODE, u32(O_RDWR));
  EXPECT_EQ(f111.record.open_flags & O_ACCMODE, u32(O_WRONLY));
  FdInfo f124 = fd(124);
  EXPECT_EQ(type(f124), FdType::Fifo);
  EXPECT_NE(f124.record.open_flags & O_PATH, 0u);
  EXPECT_EQ(f124.record.pipe_id, 0u);
  EXPECT_EQ(f124.record.ino, f110.record.ino);
  EXPECT_TRUE(S_ISFIFO(f105.record.mode));
  EXPECT_EQ(f105.record.pipe_id, f106.record.pipe_id);
  EXPECT_NE(f105.record.file_id, f106.record.file_id);
  EXPECT_EQ(f125.record.pipe_id, f126.record.pipe_id);
  std::vector<u32> pipe_ids = {f105.record.pipe_id, f107.record.pipe_id, f108.record.pipe_id,
                               f110.record.pipe_id, f111.record.pipe_id, f125.record.pipe_id};
  for (size_t i = 0; i < pipe_ids.size(); ++i) {
    EXPECT_NE(pipe_ids[i], 0u);
    for (size_t j = 0; j < i; ++j) EXPECT_NE(pipe_ids[i], pipe_ids[j]);
  }
  for (const FdInfo &f : table->fds) {
    bool is_pipe = type(f) == FdType::PipeRead || type(f) == FdType::PipeWrite ||
                   type(f) == FdType::Fifo;
    if (f.record.fd == 124) is_pipe = false;  // O_PATH: no pipe behind it
    EXPECT_EQ(f.record.pipe_id != 0, is_pipe) << f.record.fd;
    if (is_pipe) {
      const PipeInfo *pi = find_pipe(*table, f.record.pipe_id);
      ASSERT_NE(pi, nullptr) << f.record.fd;
      EXPECT_EQ(pi->ino, f.record.ino);
    }
  }
  // One PipeInfo per pipe, in pipe_id order: the six above plus the
  // command and reply pipes.
  ASSERT_EQ(table->pipes.size(), 8u);
  for (size_t i = 0; i < table->pipes.size(); ++i) EXPECT_EQ(table->pipes[i].pipe_id, u32(i + 1));
  int cap = default_pipe_size();
  auto pipe_data = [&](const FdInfo &f) {
    const PipeInfo *pi = find_pipe(*table, f.record.pipe_id);
    EXPECT_NE(pi, nullptr);
    if (pi) {
      EXPECT_EQ(pi->capacity, u32(cap));
    }
    return pi ? std::string(pi->data.begin(), pi->data.end()) : "";
  };
  EXPECT_EQ(pipe_data(f105), "hello");
  EXPECT_EQ(pipe_data(f107), "world");
  EXPECT_EQ(pipe_data(f108), "xyz");
  EXPECT_EQ(pipe_data(f110), "fifodata");
  EXPECT_EQ(pipe_data(f111), "fifo2");
  EXPECT_EQ(pipe_data(f125), "");

  // Everything else.
  EXPECT_EQ(type(fd(112)), FdType::EventFd);
  EXPECT_EQ(fd(112).path, "anon_inode:[eventfd]");
  EXPECT_EQ(type(fd(113)), FdType::Socket);
  EXPECT_EQ(type(fd(114)), FdType::Socket);
  EXPECT_EQ(fd(113).path.rfind("socket:[", 0), 0u);
  EXPECT_NE(fd(113).record.ino, fd(114).record.ino);
  FdInfo f115 = fd(115);
  EXPECT_EQ(type(f115), FdType::CharDevice);
  EXPECT_EQ(f115.path, "/dev/null");
  EXPECT_EQ(f115.record.rdev, u64(makedev(1, 3)));
  EXPECT_EQ(f115.record.flags & img::kFdTerminal, 0u);
  EXPECT_EQ(type(fd(116)), FdType::Directory);
  EXPECT_EQ(fd(116).path, p.dir);
  EXPECT_EQ(type(fd(118)), FdType::Epoll);
  EXPECT_EQ(type(fd(119)), FdType::SignalFd);
  EXPECT_EQ(type(fd(120)), FdType::TimerFd);
  EXPECT_EQ(type(fd(121)), FdType::Inotify);
  // Their own states (issue 13): the signalfd's mask (SIGUSR1: bit 9), a
  // disarmed monotonic timerfd, an inotify fd without watches.
  img::SignalFdState sig{};
  ASSERT_EQ(fd(119).state.size(), sizeof sig);
  std::memcpy(&sig, fd(119).state.data(), sizeof sig);
  EXPECT_EQ(sig.sigmask, 1ull << (SIGUSR1 - 1));
  img::TimerFdState tfd{};
  ASSERT_EQ(fd(120).state.size(), sizeof tfd);
  std::memcpy(&tfd, fd(120).state.data(), sizeof tfd);
  EXPECT_EQ(tfd.clock_id, CLOCK_MONOTONIC);
  EXPECT_EQ(tfd.value_ns, 0u);
  EXPECT_EQ(tfd.ticks, 0u);
  EXPECT_EQ(fd(121).state.size(), sizeof(img::InotifyState));
  FdInfo f122 = fd(122), f123 = fd(123);
  EXPECT_EQ(type(f122), FdType::CharDevice);
  EXPECT_EQ(f122.record.flags & img::kFdTerminal, 0u);  // the ptmx master
  EXPECT_EQ(type(f123), FdType::CharDevice);
  EXPECT_EQ(f123.record.flags & img::kFdTerminal, u32(img::kFdTerminal));
  EXPECT_GE(major(dev_t(f123.record.rdev)), 136u);
  EXPECT_LE(major(dev_t(f123.record.rdev)), 143u);
  EXPECT_EQ(f123.path.rfind("/dev/pts/", 0), 0u);
  EXPECT_EQ(type(fd(0)), FdType::CharDevice);  // /dev/null from isolate_fds

  // Nothing was consumed: the child still reads every byte, and the ends
  // it only writes to still hold theirs.
  EXPECT_EQ(child.request('r'), "hello|world|fifodata|EAGAIN");
  EXPECT_EQ(read_via_proc(pid, 108), "xyz");
  EXPECT_EQ(read_via_proc(pid, 111), "fifo2");
}

}  // namespace
}  // namespace ckpt::writer
