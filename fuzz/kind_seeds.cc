// Seeds for every note kind and fd kind (kind_seeds.h).
#include "kind_seeds.h"

#include <fcntl.h>
#include <sys/sysmacros.h>

#include <array>
#include <cstring>

#include <ckpt/img/fd_kinds.h>
#include <ckpt/img/fd_states.h>

namespace ckpt::fuzz {

using namespace img;

namespace {

std::span<const u8> bytes_of(std::string_view s) { return {reinterpret_cast<const u8 *>(s.data()), s.size()}; }

template <typename State>
State with_header(State s) {
  s.header = {static_cast<u32>(sizeof s), State::kVersion};
  return s;
}

// ---- One fd of each kind, with its state ------------------------------------

using Fds = TableBuilder<FdRecord>;

void recreated(Fds &t, FdRecord r, FdType type) {
  r.type = static_cast<u32>(type);
  r.flags = type == FdType::Regular ? kFdUnlinked : 0;
  r.size = 8192 + 5;
  r.mode = 0100600;
  r.path = t.add_string(type == FdType::Regular ? "/tmp/seed (deleted)" : "/memfd:seed (deleted)");
  std::vector<u8> content(r.size, 0);
  std::memcpy(content.data() + 8192, "tail!", 5);
  r.content = t.add_blob(content);
  RecreatedFileState s{};
  s.uid = 1000;
  s.gid = 1000;
  s.blocks = 8;
  r.state = t.add_blob(recreated_file_state_bytes(s, {{8192, 5}}));
  t.add(r);
}
void regular(Fds &t, FdRecord r) { recreated(t, r, FdType::Regular); }
void memfd(Fds &t, FdRecord r) { recreated(t, r, FdType::MemFd); }

void by_path(Fds &t, FdRecord r, FdType type, const char *path, u64 rdev = 0) {
  r.type = static_cast<u32>(type);
  r.rdev = rdev;
  r.path = t.add_string(path);
  t.add(r);
}
void directory(Fds &t, FdRecord r) { by_path(t, r, FdType::Directory, "/tmp"); }
void pipe_write(Fds &t, FdRecord r) {
  r.pipe_id = 1;  // the synthetic image's pipe (its read end is fd 4)
  by_path(t, r, FdType::PipeWrite, "pipe:[99]");
}
void pipe_read(Fds &t, FdRecord r) {
  r.pipe_id = 1;
  by_path(t, r, FdType::PipeRead, "pipe:[99]");
}
void fifo(Fds &t, FdRecord r) { by_path(t, r, FdType::Fifo, "/tmp/seed.fifo"); }
void block_device(Fds &t, FdRecord r) { by_path(t, r, FdType::BlockDevice, "/dev/sda", makedev(8, 0)); }
void other(Fds &t, FdRecord r) { by_path(t, r, FdType::Other, "anon_inode:[io_uring]"); }

void pty_master(Fds &t, FdRecord r) {
  TtyState s{};
  s.flags = kTtyMaster | kTtyPacketMode;
  s.index = 3;
  s.c_lflag = 02 | 010;
  s.ws_row = 24;
  s.ws_col = 80;
  r.state = t.add_blob(fd_state_bytes(with_header(s)));
  by_path(t, r, FdType::CharDevice, "/dev/ptmx", makedev(5, 2));
}

InetSocketState inet_socket(u32 family, u32 sock_type, u32 protocol, u32 state) {
  InetSocketState s{};
  s.family = family;
  s.sock_type = sock_type;
  s.protocol = protocol;
  s.state = state;
  return s;
}

void sockets(Fds &t, FdRecord r) {
  r.type = static_cast<u32>(FdType::Socket);
  // AF_UNIX: bound in the abstract namespace, two messages queued.
  UnixSocketState u{};
  u.sock_type = 2;
  u.flags = kUnixConnected;
  u.ino = 777;
  r.ino = 777;
  r.path = t.add_string("socket:[777]");
  r.state = t.add_blob(unix_socket_state_bytes(u, std::string("\0seed", 5), {{1, 2, 3}, {4, 5, 6, 7, 8, 9, 10, 11, 12}}));
  t.add(r);
  // TCP, established and repaired, with both queues.
  InetSocketState tcp = inet_socket(2, 1, 6, 1);  // AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_ESTABLISHED
  tcp.flags = kInetRepaired | kInetNoDelay;
  tcp.local_addr[0] = 127;
  tcp.local_addr[3] = 1;
  tcp.peer_addr[0] = 127;
  tcp.peer_addr[3] = 1;
  tcp.local_port = 8080;
  tcp.peer_port = 40000;
  tcp.unsent_bytes = 2;
  r.fd++;
  r.ino = 778;
  r.path = t.add_string("socket:[778]");
  r.state = t.add_blob(inet_socket_state_bytes(tcp, bytes_of("received"), bytes_of("sent"), {}));
  t.add(r);
  // UDP over IPv6 with two datagrams.
  InetSocketState udp = inet_socket(10, 2, 17, 7);  // AF_INET6, SOCK_DGRAM, IPPROTO_UDP, TCP_CLOSE
  InetDatagram d{};
  d.header.port = 53;
  d.header.addr[15] = 1;
  d.bytes = bytes_of("datagram");
  r.fd++;
  r.ino = 779;
  r.path = t.add_string("socket:[779]");
  r.state = t.add_blob(inet_socket_state_bytes(udp, {}, {}, {d, d}));
  t.add(r);
}

void eventfd(Fds &t, FdRecord r) {
  EventFdState s{};
  s.count = 7;
  s.flags = kEventFdSemaphore;
  r.state = t.add_blob(fd_state_bytes(with_header(s)));
  by_path(t, r, FdType::EventFd, "anon_inode:[eventfd]");
}
void signalfd(Fds &t, FdRecord r) {
  SignalFdState s{};
  s.sigmask = 1u << 9;
  r.state = t.add_blob(fd_state_bytes(with_header(s)));
  by_path(t, r, FdType::SignalFd, "anon_inode:[signalfd]");
}
void timerfd(Fds &t, FdRecord r) {
  TimerFdState s{};
  s.clock_id = 1;
  s.ticks = 2;
  s.value_ns = 500000000;
  s.interval_ns = 1000000000;
  r.state = t.add_blob(fd_state_bytes(with_header(s)));
  by_path(t, r, FdType::TimerFd, "anon_inode:[timerfd]");
}
void epoll(Fds &t, FdRecord r) {
  r.state = t.add_blob(epoll_state_bytes({{3, 1, 0x1234, kEpollTargetOpen, 0}, {4, 4 | (1u << 31), 7, kEpollTargetOpen, 0}}));
  by_path(t, r, FdType::Epoll, "anon_inode:[eventpoll]");
}
void inotify(Fds &t, FdRecord r) {
  InotifyWatchEntry a{{1, 0x100, 42, 2049, 0, 0}, "/tmp"};
  InotifyWatchEntry b{{2, 0x2, 43, 2049, 0, 0}, "/tmp/seed.txt"};
  r.state = t.add_blob(inotify_state_bytes({a, b}));
  by_path(t, r, FdType::Inotify, "anon_inode:inotify");
}

struct FdSeed {
  FdType type;
  /// Adds fds of this kind (fd numbers from r.fd on) to the table.
  void (*add)(Fds &t, FdRecord r);
  constexpr bool complete() const { return add != nullptr; }
};

constexpr std::array<FdSeed, kFdTypeCount> kFdSeeds = {{
    {FdType::Regular, regular},
    {FdType::Directory, directory},
    {FdType::PipeRead, pipe_read},
    {FdType::PipeWrite, pipe_write},
    {FdType::Fifo, fifo},
    {FdType::CharDevice, pty_master},
    {FdType::BlockDevice, block_device},
    {FdType::Socket, sockets},
    {FdType::EventFd, eventfd},
    {FdType::SignalFd, signalfd},
    {FdType::TimerFd, timerfd},
    {FdType::Epoll, epoll},
    {FdType::Inotify, inotify},
    {FdType::MemFd, memfd},
    {FdType::Other, other},
}};
static_assert(covers_every_fd_type(kFdSeeds), "every FdType needs its seed in fuzz/kind_seeds.cc (kFdSeeds)");

FdRecord fd_base(int pid, int fd) {
  FdRecord r{};
  r.pid = pid;
  r.fd = fd;
  r.open_flags = O_RDWR;
  r.file_id = static_cast<u32>(fd);
  return r;
}

// ---- One seed per note kind -------------------------------------------------
// Kinds make_synthetic() already fills (identity, tasks, threads, VMAs,
// page ranges, pipes, signals, timers, rlimits), that its variants and the
// tree seed write (parent, tree), or that have no overload of their own.
template <typename R>
void seed_kind(ImageNotes &, TableBuilder<R> &, int) {}

void seed_kind(ImageNotes &, TableBuilder<FdRecord> &fds, int pid) {
  int fd = 10;
  for (const FdSeed &s : kFdSeeds) {
    s.add(fds, fd_base(pid, fd));
    fd += 4;
  }
}

// A filter on the leader thread, which must say it is in filter mode.
void seed_kind(ImageNotes &n, TableBuilder<SeccompFilterRecord> &filters, int pid) {
  for (ThreadRecord &t : n.thread_records.records)
    if (t.tid == pid) {
      t.flags |= kThreadPrivileges;
      t.seccomp_mode = static_cast<u32>(SeccompMode::Filter);
      t.seccomp_filter_count = 1;
    }
  const u8 allow[8] = {0x06, 0, 0, 0, 0, 0, 0xff, 0x7f};  // BPF_RET|BPF_K SECCOMP_RET_ALLOW
  filters.add({pid, pid, 0, kSeccompFilterFlagLog, filters.add_blob(allow)});
}

void seed_kind(ImageNotes &, TableBuilder<StoredFileRecord> &t, int) {
  StoredFileRecord f{};
  f.dev = makedev(8, 1);
  f.dev_major = 8;
  f.dev_minor = 1;
  f.ino = 4242;
  f.size = 6;
  f.mode = 0100644;
  f.path = t.add_string("/tmp/seed-stored");
  f.content = t.add_blob(bytes_of("stored"));
  t.add(f);
}

void seed_kind(ImageNotes &, TableBuilder<LockRecord> &t, int pid) {
  t.add({pid, 10, static_cast<u32>(LockKind::Posix), 1, 0, kLockToEof});
  t.add({pid, 10, static_cast<u32>(LockKind::Flock), 0, 0, 0});
}

void seed_kind(ImageNotes &, TableBuilder<GuardRangeRecord> &t, int pid) { t.add({pid, 0, 0x20000000, 0x1000}); }

void seed_kind(ImageNotes &, TableBuilder<DirtyTrackingRecord> &t, int pid) {
  DirtyTrackingRecord r{};
  for (int i = 0; i < 16; i++) r.boot_id[i] = static_cast<u8>(i + 1);
  r.tracker_ino = 99;
  r.pid = pid;
  r.flags = kTrackingUsed;
  r.tracked_bytes = 0x4000;
  r.written_bytes = 0x2000;
  const u64 armed[4] = {0x10000000, 0x10004000, 0x10010000, 0x10012000};
  r.armed = t.add_blob({reinterpret_cast<const u8 *>(armed), sizeof armed});
  t.add(r);
}

void seed_kind(ImageNotes &, TableBuilder<SysvIpcRecord> &t, int pid) {
  SysvIpcRecord shm{};
  shm.kind = static_cast<u32>(SysvIpcKind::Shm);
  shm.id = 1;
  shm.key = 0x5eed;
  shm.mode = 0600;
  shm.cpid = pid;
  shm.size = 16;
  shm.data = t.add_blob(bytes_of("sixteen bytes!!!"));
  t.add(shm);
  SysvIpcRecord sem{};
  sem.kind = static_cast<u32>(SysvIpcKind::Sem);
  sem.id = 2;
  sem.count = 2;
  const u16 values[2] = {1, 5};
  sem.data = t.add_blob({reinterpret_cast<const u8 *>(values), sizeof values});
  t.add(sem);
  SysvIpcRecord msg{};
  msg.kind = static_cast<u32>(SysvIpcKind::Msg);
  msg.id = 3;
  msg.count = 1;
  msg.size = 16384;
  std::vector<u8> queue(sizeof(SysvMessageHeader) + 8, 0);
  SysvMessageHeader h{1, 5};
  std::memcpy(queue.data(), &h, sizeof h);
  std::memcpy(queue.data() + sizeof h, "hello", 5);
  msg.data = t.add_blob(queue);
  t.add(msg);
}

void seed_kind(ImageNotes &, TableBuilder<IpcNamespaceRecord> &t, int) { t.add({kIpcNsOwn, 0, 4026531839u}); }

}  // namespace

void add_every_kind(ImageNotes &n, int pid) {
#define CKPT_FUZZ_SEED_KIND(name, type, R, builder, ...) seed_kind(n, n.builder, pid);
  CKPT_NOTE_KINDS(CKPT_FUZZ_SEED_KIND)
#undef CKPT_FUZZ_SEED_KIND
}

std::vector<u8> fd_kind_table(FdType type, int pid) {
  Fds t;
  kFdSeeds[static_cast<u32>(type)].add(t, fd_base(pid, 10));
  return t.encode();
}

}  // namespace ckpt::fuzz
