// read_fds() (writer/src/fds.h) on pipes that fill many ring slots or a
// large ring, on imgtool's own process, on failures, and the terminal a
// program ran from.
#include "fds_helpers.h"

namespace ckpt::writer {
namespace {

using namespace fdtest;

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
  ASSERT_FALSE(tmp.path().empty());
  std::string path = tmp.path() + "/mine";
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
  ASSERT_FALSE(tmp.path().empty());
  std::string path = tmp.path() + "/huge";
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
