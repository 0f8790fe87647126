// The support list (libimg/restorable.h): every offender named, grouped by
// pid, and the same answer for notes not yet written (what dump asks) as
// for the image they become (what restore, verify and info ask).
#include <gtest/gtest.h>

#include <sys/sysmacros.h>

#include <ckpt/img/reader.h>
#include <ckpt/img/restorable.h>

#include "synthetic.h"

namespace {

using namespace ckpt::img;

FdRecord fd_of(ImageNotes &n, i32 pid, i32 fd, FdType type, const char *path, u64 rdev = 0) {
  FdRecord r{};
  r.pid = pid;
  r.fd = fd;
  r.type = static_cast<u32>(type);
  r.rdev = rdev;
  r.path = n.fds.add_string(path);
  return r;
}

TEST(Restorable, SyntheticImageHoldsNothingUnsupported) {
  auto im = ckpt::test::make_synthetic();
  auto v = view_of_notes(im.notes);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_TRUE(unsupported_state(v->view).empty()) << unsupported_message(unsupported_state(v->view));
}

TEST(Restorable, EveryOffenderGroupedByPid) {
  auto im = ckpt::test::make_synthetic();
  ImageNotes &n = im.notes;
  n.fds.add(fd_of(n, 4242, 5, FdType::Socket, "socket:[77]"));
  n.fds.add(fd_of(n, 4242, 6, FdType::CharDevice, "/dev/null", makedev(1, 3)));    // fine
  n.fds.add(fd_of(n, 4242, 7, FdType::CharDevice, "/dev/urandom", makedev(1, 9)));  // fine
  n.fds.add(fd_of(n, 4242, 8, FdType::CharDevice, "/dev/net/tun", makedev(10, 200)));
  n.fds.add(fd_of(n, 4242, 9, FdType::CharDevice, "/dev/pts/4", makedev(136, 4)));
  FdRecord ctty = fd_of(n, 4242, 10, FdType::CharDevice, "/dev/pts/1", makedev(136, 1));
  ctty.flags = kFdTerminal;  // the terminal it was run from: reconnected
  n.fds.add(ctty);
  n.fds.add(fd_of(n, 4242, 11, FdType::Other, "anon_inode:[pidfd]"));
  TimerRecord t{};
  t.pid = 4242;
  t.kind = static_cast<u32>(TimerKind::Posix);
  t.timer_id = 2;
  t.sigev_notify = 4;  // SIGEV_THREAD_ID, to a thread restore makes later
  t.sigev_tid = 4243;
  n.timers.add(t);
  TimerRecord to_main = t;  // to the main thread: restorable
  to_main.timer_id = 3;
  to_main.sigev_tid = 4242;
  n.timers.add(to_main);
  // A second process (a tree): grouped apart, after the image-wide line.
  TaskRecord second = n.tasks.records[0];
  second.pid = 4300;
  n.tasks.add(second);
  n.fds.add(fd_of(n, 4300, 3, FdType::Inotify, "anon_inode:inotify"));

  auto v = view_of_notes(n);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(unsupported_message(unsupported_state(v->view)),
            "image: a process tree of 2 processes: not supported; "
            "pid 4242: fd 5 socket (only AF_UNIX, TCP and UDP sockets are restored), fd 8 character device /dev/net/tun (10:200), "
            "fd 9 pty /dev/pts/4 (not the terminal it was run from), fd 11 pidfd (it names a process that may not "
            "exist after restore), POSIX timer 2 (it signals thread 4243, not the main thread): not supported; "
            "pid 4300: fd 3 inotify (its watches were not captured): not supported");

  // The written image gives the same answer as the notes before writing.
  auto bytes = ckpt::test::encode_image(im);
  auto r = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(r) << r.error().message();
  auto decoded = decode_ckpt(*r);
  ASSERT_TRUE(decoded) << decoded.error().message();
  EXPECT_EQ(unsupported_message(unsupported_state(*decoded)), unsupported_message(unsupported_state(v->view)));
}

// A POSIX lock is refused on a file the process also maps (restore's own
// fd for the mapping, closed, would drop it), and only there; flock and
// OFD locks belong to the open file and are fine.
TEST(Restorable, PosixLockOnAMappedFileIsRefused) {
  auto im = ckpt::test::make_synthetic();
  ImageNotes &n = im.notes;
  // The synthetic image's first mapping, made a private file mapping
  // (its stored pages are then the changed ones).
  ASSERT_FALSE(n.vmas.records.empty());
  VmaRecord *file = &n.vmas.records[0];
  file->kind = static_cast<u32>(VmaKind::File);
  file->dev = makedev(8, 1);
  file->ino = 4711;
  file->path = n.vmas.add_string("/usr/lib/mapped.so");
  FdRecord mapped = fd_of(n, 4242, 5, FdType::Regular, "/usr/bin/synthetic");
  mapped.dev = file->dev;
  mapped.ino = file->ino;
  n.fds.add(mapped);
  FdRecord other = fd_of(n, 4242, 6, FdType::Regular, "/tmp/other");
  other.dev = file->dev;
  other.ino = file->ino + 1;
  n.fds.add(other);
  auto lock = [&](i32 fd, LockKind kind) {
    LockRecord l{};
    l.pid = 4242;
    l.fd = fd;
    l.kind = static_cast<u32>(kind);
    l.end = kLockToEof;
    n.locks.add(l);
  };
  lock(5, LockKind::Flock);
  lock(5, LockKind::Ofd);
  lock(6, LockKind::Posix);
  {
    auto v = view_of_notes(n);
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_TRUE(unsupported_state(v->view).empty()) << unsupported_message(unsupported_state(v->view));
  }
  lock(5, LockKind::Posix);
  auto v = view_of_notes(n);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(unsupported_message(unsupported_state(v->view)),
            "pid 4242: fd 5 POSIX lock on a file that is also mapped: not supported");
}

// Notes not yet written show the writer every table the image will have:
// a table left out of view_of_notes() would let dump pass what restore
// refuses (seccomp filters were, once).
TEST(Restorable, NotesViewHasEveryTable) {
  auto im = ckpt::test::make_synthetic();
  ImageNotes &n = im.notes;
  StoredFileRecord f{};
  f.path = n.stored_files.add_string("/dev/shm/x");
  n.stored_files.add(f);
  ThreadRecord &t = n.thread_records.records[0];
  t.flags |= kThreadPrivileges;
  t.seccomp_mode = static_cast<u32>(SeccompMode::Filter);
  t.seccomp_filter_count = 1;
  SeccompFilterRecord filter{};
  filter.pid = t.pid;
  filter.tid = t.tid;
  filter.program = n.seccomp_filters.add_blob(std::vector<u8>(8, 0));
  n.seccomp_filters.add(filter);
  auto v = view_of_notes(n);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->view.seccomp_filters.records.size(), 1u);
  EXPECT_EQ(v->view.stored_files.records.size(), 1u);
}

TEST(Restorable, StatelessCharDevices) {
  for (unsigned mi : {3u, 5u, 7u, 8u, 9u}) EXPECT_TRUE(is_stateless_char_device(makedev(1, mi))) << mi;
  for (unsigned mi : {1u, 2u, 4u, 11u}) EXPECT_FALSE(is_stateless_char_device(makedev(1, mi))) << mi;
  EXPECT_FALSE(is_stateless_char_device(makedev(5, 2)));
  EXPECT_FALSE(is_stateless_char_device(makedev(136, 0)));
}

}  // namespace
