// Tests of read_fds() (writer/src/fds.h) against a real child that opens one
// fd of every kind at a fixed number, reports "ready", and then proves on
// request that the bytes buffered in its pipes were not consumed.
#include "fds.h"
#include "procfs.h"

#include "child_process.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace ckpt::writer {
namespace {

using ckpt::test::Child;
using img::FdFlags;
using img::FdType;
using img::i64;
using img::u32;
using img::u64;

constexpr int kIn = 200, kOut = 201;  // the child's command/reply pipes

int pidfd_open(pid_t pid) { return int(syscall(SYS_pidfd_open, pid, 0)); }

/// In the child: moves the command/reply pipes to kIn/kOut and each
/// (fd, target) in keep to its target, closes every other fd, and points
/// 0, 1, 2 at /dev/null, so the table holds only what the test made.
void isolate_fds(int in, int out, std::initializer_list<std::pair<int, int>> keep = {}) {
  CHILD_CHECK(dup2(in, kIn) == kIn, out);
  CHILD_CHECK(dup2(out, kOut) == kOut, out);
  for (auto [fd, target] : keep) CHILD_CHECK(dup2(fd, target) == target, kOut);
  for (int fd = 3; fd < 1024; ++fd) {
    bool kept = fd == kIn || fd == kOut;
    for (auto [from, target] : keep) kept = kept || fd == target;
    if (!kept) close(fd);
  }
  int null = open("/dev/null", O_RDWR);
  CHILD_CHECK(null >= 0, kOut);
  for (int fd = 0; fd < 3; ++fd) CHILD_CHECK(dup2(null, fd) == fd, kOut);
  if (null > 2) close(null);
}

/// In the child: puts fd at number target (with FD_CLOEXEC if asked) and
/// closes the original.
void place(int fd, int target, bool cloexec = false) {
  CHILD_CHECK(fd >= 0, kOut);
  CHILD_CHECK(dup3(fd, target, cloexec ? O_CLOEXEC : 0) == target, kOut);
  close(fd);
}

/// In the child: one non-blocking read of up to 64 KiB, or "EAGAIN".
std::string read_now(int fd) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  std::string buf(65536, '\0');
  ssize_t n = read(fd, buf.data(), buf.size());
  if (n < 0) return "EAGAIN";
  buf.resize(size_t(n));
  return buf;
}

/// In the child: non-blocking reads until EAGAIN, all they returned;
/// `reads` counts them (one packet each in packet mode).
std::string read_all_now(int fd, int *reads = nullptr) {
  std::string got;
  for (;;) {
    std::string s = read_now(fd);
    if (s == "EAGAIN") return got;
    got += s;
    if (reads) ++*reads;
  }
}

/// Reads what a pipe/FIFO holds through a new read end opened on
/// /proc/PID/fd/N, for ends the child only writes to.
std::string read_via_proc(pid_t pid, int fd) {
  std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  int r = open(link.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (r < 0) return std::string("open failed: ") + strerror(errno);
  std::string buf(65536, '\0');
  ssize_t n = read(r, buf.data(), buf.size());
  close(r);
  if (n < 0) return "EAGAIN";
  buf.resize(size_t(n));
  return buf;
}

std::string pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char((i * 7 + seed) % 251);
  return s;
}

std::vector<img::u8> bytes(const std::string &s) { return {s.begin(), s.end()}; }

const FdInfo *find_fd(const FdTable &t, int fd) {
  for (const FdInfo &f : t.fds)
    if (f.record.fd == fd) return &f;
  return nullptr;
}

const PipeInfo *find_pipe(const FdTable &t, img::u32 pipe_id) {
  for (const PipeInfo &p : t.pipes)
    if (p.pipe_id == pipe_id) return &p;
  return nullptr;
}

/// The fd table of a child that has said "ready", read through a pidfd of
/// it; a child that does not get there fails the test.
img::Expected<FdTable> fds_of_ready_child(Child &child) {
  if (!child.started()) {
    ADD_FAILURE() << "the child did not start";
    return img::make_error("the child did not start");
  }
  std::string reply = child.reply();
  if (reply != "ready") {
    ADD_FAILURE() << "the child said \"" << reply << "\", not \"ready\"";
    return img::make_error("the child is not ready");
  }
  int pidfd = pidfd_open(child.pid());
  if (pidfd < 0) {
    ADD_FAILURE() << "pidfd_open " << child.pid() << ": " << strerror(errno);
    return img::make_error("no pidfd");
  }
  auto table = read_fds(child.pid(), pidfd);
  close(pidfd);
  return table;
}

size_t count_own_fds() {
  size_t n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return 0;
  while (readdir(d)) ++n;
  closedir(d);
  return n;
}

int default_pipe_size() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return -1;
  int size = fcntl(p[0], F_GETPIPE_SZ);
  close(p[0]);
  close(p[1]);
  return size;
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/ckpt-fds-XXXXXX";
    if (mkdtemp(t)) path = t;
  }
  ~TempDir() {
    if (!path.empty()) (void)!system(("rm -rf '" + path + "'").c_str());
  }
};

bool write_file(const std::string &path, const std::string &content) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = ckpt::test::write_all(fd, content);
  close(fd);
  return ok;
}

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
  ASSERT_FALSE(tmp.path.empty());
  Paths p;
  p.dir = tmp.path;
  p.a = tmp.path + "/a";
  p.b = tmp.path + "/b file";
  p.unlinked = tmp.path + "/unlinked";
  p.fifo1 = tmp.path + "/fifo1";
  p.fifo2 = tmp.path + "/fifo 2";
  p.fake_deleted = tmp.path + "/x (deleted)";
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

// ---- pipes whose bytes fill many ring slots or a large ring -----------------

TEST(Fds, PacketPipeKeepsEverySlot) {
  const std::string kPackets = "0123456789abcdefghijklmnopqrstuv";
  // A packet-mode pipe (O_DIRECT) puts each write in a ring slot of its own,
  // so 32 one-byte writes fill all 32 slots of a 128 KiB pipe: the copy must
  // have as many slots (more than a default 64 KiB pipe), not just 32 bytes
  // of room.
  Child child([&](int in, int out) {
    isolate_fds(in, out);
    int p[2];
    CHILD_CHECK(pipe2(p, O_DIRECT) == 0, kOut);
    CHILD_CHECK(fcntl(p[1], F_SETPIPE_SZ, 131072) == 131072, kOut);
    place(p[0], 100);
    place(p[1], 101);
    for (char c : kPackets) CHILD_CHECK(write(101, &c, 1) == 1, kOut);
    ckpt::test::write_all(kOut, "ready\n");
    ckpt::test::serve_commands(kIn, kOut, [](char) {
      // Each read returns one packet; count them.
      int reads = 0;
      std::string got = read_all_now(100, &reads);
      return std::to_string(reads) + " " + got;
    });
  });
  auto table = fds_of_ready_child(child);
  ASSERT_TRUE(table) << table.error().message();
  const FdInfo *r = find_fd(*table, 100);
  ASSERT_NE(r, nullptr);
  // No check of O_DIRECT in open_flags: Linux 6.18 shows it neither in
  // fdinfo nor in F_GETFL for a packet-mode pipe, although writes are
  // packetized.
  const PipeInfo *pi = find_pipe(*table, r->record.pipe_id);
  ASSERT_NE(pi, nullptr);
  EXPECT_EQ(pi->capacity, 131072u);
  EXPECT_EQ(std::string(pi->data.begin(), pi->data.end()), kPackets);
  EXPECT_EQ(child.request('r'), "32 " + kPackets);
}

TEST(Fds, LargestPipeWithoutCapSysResource) {
  auto max_text = read_file("/proc/sys/fs/pipe-max-size");
  ASSERT_TRUE(max_text) << max_text.error().message();
  int max = atoi(max_text->c_str());
  ASSERT_GT(max, 0);
  const std::string content = pattern(size_t(max) - 1, 5);
  Child child([&](int in, int out) {
    isolate_fds(in, out);
    int p[2];
    CHILD_CHECK(pipe(p) == 0, kOut);
    CHILD_CHECK(fcntl(p[1], F_SETPIPE_SZ, max) == max, kOut);
    place(p[0], 100);
    place(p[1], 101);
    CHILD_CHECK(ckpt::test::write_all(101, content), kOut);
    ckpt::test::write_all(kOut, "ready\n");
    ckpt::test::serve_commands(kIn, kOut, [&](char) {
      std::string got = read_all_now(100);
      return std::string(got == content ? "same" : "differs") + " " + std::to_string(got.size());
    });
  });
  auto table = fds_of_ready_child(child);
  ASSERT_TRUE(table) << table.error().message();
  const FdInfo *w = find_fd(*table, 101);
  ASSERT_NE(w, nullptr);
  const PipeInfo *pi = find_pipe(*table, w->record.pipe_id);
  ASSERT_NE(pi, nullptr);
  EXPECT_EQ(pi->capacity, u32(max));
  EXPECT_TRUE(std::string(pi->data.begin(), pi->data.end()) == content)
      << "got " << pi->data.size() << " bytes";
  EXPECT_EQ(child.request('r'), "same " + std::to_string(content.size()));
}

TEST(Fds, OwnProcess) {
  // Reading our own table: the fds read_fds opens for itself come and go
  // while it runs and must not make it fail or appear in the result.
  TempDir tmp;
  ASSERT_FALSE(tmp.path.empty());
  std::string path = tmp.path + "/mine";
  ASSERT_TRUE(write_file(path, "0123456789"));
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(lseek(fd, 4, SEEK_SET), 4);
  int pidfd = pidfd_open(getpid());
  ASSERT_GE(pidfd, 0);
  size_t fds_before = count_own_fds();
  auto table = read_fds(getpid(), pidfd);
  EXPECT_EQ(count_own_fds(), fds_before);
  ASSERT_TRUE(table) << table.error().message();
  const FdInfo *mine = find_fd(*table, fd);
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(mine->path, path);
  EXPECT_EQ(mine->record.pos, 4u);
  EXPECT_EQ(mine->record.fd_flags, u32(FD_CLOEXEC));
  const FdInfo *own_pidfd = find_fd(*table, pidfd);
  ASSERT_NE(own_pidfd, nullptr);
  EXPECT_EQ(FdType(own_pidfd->record.type), FdType::Other);
  EXPECT_EQ(own_pidfd->path, "anon_inode:[pidfd]");
  for (size_t i = 1; i < table->fds.size(); ++i)
    EXPECT_LT(table->fds[i - 1].record.fd, table->fds[i].record.fd);
  close(pidfd);
  close(fd);
}

// ---- failures -------------------------------------------------------------

TEST(Fds, UnlinkedFileAboveTheLimitFailsClearly) {
  TempDir tmp;
  ASSERT_FALSE(tmp.path.empty());
  std::string path = tmp.path + "/huge";
  Child child([&](int in, int out) {
    isolate_fds(in, out);
    int fd = open(path.c_str(), O_RDWR | O_CREAT, 0600);
    CHILD_CHECK(fd >= 0, kOut);
    CHILD_CHECK(ftruncate(fd, off_t(kMaxUnlinkedFileBytes + 1)) == 0, kOut);  // sparse
    CHILD_CHECK(unlink(path.c_str()) == 0, kOut);
    place(fd, 100);
    ckpt::test::write_all(kOut, "ready\n");
    ckpt::test::serve_commands(kIn, kOut, [](char) { return std::string("?"); });
  });
  auto table = fds_of_ready_child(child);
  ASSERT_FALSE(table);
  const std::string &msg = table.error().message();
  EXPECT_NE(msg.find("pid " + std::to_string(child.pid()) + " fd 100"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unlinked"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(Fds, GoneProcessFailsClearly) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  auto table = read_fds(pid, -1);
  ASSERT_FALSE(table);
  EXPECT_NE(table.error().message().find("/proc/" + std::to_string(pid) + "/fd"),
            std::string::npos)
      << table.error().message();
}

// Which terminals keep kFdTerminal, i.e. are reconnected to the restoring
// terminal (docs/DECISIONS.md 27); the others are refused by restore.
FdInfo terminal_fd(int fd, dev_t rdev) {
  FdInfo fi;
  fi.record.fd = fd;
  fi.record.type = u32(FdType::CharDevice);
  fi.record.rdev = rdev;
  fi.record.flags = img::kFdTerminal;
  return fi;
}

bool marked(const FdTable &t, int fd) {
  for (const FdInfo &fi : t.fds)
    if (fi.record.fd == fd) return (fi.record.flags & img::kFdTerminal) != 0;
  ADD_FAILURE() << "no fd " << fd;
  return false;
}

TEST(Fds, OnlyTheTerminalTheProgramRanFromIsReconnected) {
  const dev_t pts3 = makedev(136, 3), pts7 = makedev(136, 7), dev_tty = makedev(5, 0);
  const int tty_nr_pts3 = (136 << 8) | 3;  // new_encode_dev, as /proc/PID/stat prints it
  {
    // Run from pts/3: its std streams there, /dev/tty, and a pts/7 it opened.
    FdTable t;
    for (int fd : {0, 1, 2}) t.fds.push_back(terminal_fd(fd, pts3));
    t.fds.push_back(terminal_fd(5, dev_tty));
    t.fds.push_back(terminal_fd(6, pts7));
    t.fds.push_back(terminal_fd(9, pts3));
    mark_controlling_terminal(t, tty_nr_pts3);
    for (int fd : {0, 1, 2, 5, 9}) EXPECT_TRUE(marked(t, fd)) << fd;
    EXPECT_FALSE(marked(t, 6));
  }
  {
    // After setsid: no controlling terminal, but fds 0-2 are still the
    // terminal it was started from; /dev/tty would not open, pts/7 elsewhere.
    FdTable t;
    for (int fd : {0, 1, 2}) t.fds.push_back(terminal_fd(fd, pts3));
    t.fds.push_back(terminal_fd(5, dev_tty));
    t.fds.push_back(terminal_fd(6, pts7));
    mark_controlling_terminal(t, 0);
    for (int fd : {0, 1, 2}) EXPECT_TRUE(marked(t, fd)) << fd;
    EXPECT_FALSE(marked(t, 5));
    EXPECT_FALSE(marked(t, 6));
  }
  {
    // A pair of its own (a /dev/ptmx master): its slave is not reconnected,
    // not even on fd 0-2 (`script`, expect).
    FdTable t;
    FdInfo master = terminal_fd(3, makedev(5, 2));
    master.record.flags = 0;
    t.fds.push_back(master);
    for (int fd : {0, 1, 2}) t.fds.push_back(terminal_fd(fd, pts7));
    mark_controlling_terminal(t, 0);
    for (int fd : {0, 1, 2}) EXPECT_FALSE(marked(t, fd)) << fd;
  }
}

}  // namespace
}  // namespace ckpt::writer
