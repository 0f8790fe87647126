// Records of open files: the fd table with its kinds (CKPT_FD_TYPES), pipe
// buffers, file locks and stored in-memory files. A kind's own state is
// records_fd_states.h's. Part of records.h.
#pragma once

#include <ckpt/img/records_refs.h>

namespace ckpt::img {

/// CkptNote::Fds: one per file descriptor.
struct FdRecord {
  i32 pid;
  i32 fd;
  u32 fd_flags;          ///< FD_CLOEXEC
  u32 type;              ///< FdType
  u32 open_flags;        ///< O_* from /proc/PID/fdinfo (flags:)
  u32 mode;              ///< st_mode
  u64 pos;
  u64 dev, ino, size;
  i64 mtime_ns;
  u32 file_id;           ///< equal ids share one open file description
  u32 pipe_id;           ///< for pipes/FIFOs: key into PipeRecord
  u32 flags;             ///< FdFlags
  u32 seals;             ///< a memfd's F_GET_SEALS, with kFdSeals (zero in older writers' pad)
  u64 rdev;
  StrRef path;
  BlobRef content;       ///< an unlinked file's bytes
  // Format 1.2 on (older writers' records end above: state reads as empty):
  BlobRef state;         ///< the kind's own state: FdStateHeader + fields
  // Format 1.4 on (zero from older writers: file_identity() derives them
  // from dev):
  u32 dev_major;         ///< major(st_dev)
  u32 dev_minor;         ///< minor(st_dev)
};
static_assert(sizeof(FdRecord) == 136);
static_assert(offsetof(FdRecord, state) == 112 && offsetof(FdRecord, dev_major) == 128);

/// The fd kinds, one line each: name and the number stored in
/// FdRecord::type (dense from 0; a new kind takes the next number). Every
/// fd kind registry (libimg/fd_kinds.h, writer/src/fd_kinds/,
/// reader/src/fd_kinds/) is a table of exactly kFdTypeCount entries that a
/// static_assert checks, so a kind added here without its dump, restore,
/// describe and preflight parts does not build
/// (docs/design/adding-an-fd-kind.md).
#define CKPT_FD_TYPES(X) \
  X(Regular, 0)          \
  X(Directory, 1)        \
  X(PipeRead, 2)         \
  X(PipeWrite, 3)        \
  X(Fifo, 4)             \
  X(CharDevice, 5)       \
  X(BlockDevice, 6)      \
  X(Socket, 7)           \
  X(EventFd, 8)          \
  X(SignalFd, 9)         \
  X(TimerFd, 10)         \
  X(Epoll, 11)           \
  X(Inotify, 12)         \
  X(MemFd, 13)           \
  X(Other, 14)

enum class FdType : u32 {
#define CKPT_FD_TYPE_ENUMERATOR(name, value) name = value,
  CKPT_FD_TYPES(CKPT_FD_TYPE_ENUMERATOR)
#undef CKPT_FD_TYPE_ENUMERATOR
};

/// How many FdTypes there are: the size of every fd kind registry.
inline constexpr u32 kFdTypeCount = 0
#define CKPT_FD_TYPE_COUNT(name, value) +1
    CKPT_FD_TYPES(CKPT_FD_TYPE_COUNT)
#undef CKPT_FD_TYPE_COUNT
    ;
namespace detail {
constexpr bool fd_types_are_dense() {
  u32 values[] = {
#define CKPT_FD_TYPE_VALUE(name, value) value,
      CKPT_FD_TYPES(CKPT_FD_TYPE_VALUE)
#undef CKPT_FD_TYPE_VALUE
  };
  for (u32 i = 0; i < kFdTypeCount; i++)
    if (values[i] != i) return false;
  return true;
}
}  // namespace detail
static_assert(detail::fd_types_are_dense(), "FdType values must be 0, 1, 2... in CKPT_FD_TYPES order");

enum FdFlags : u32 {
  kFdUnlinked = 1u << 0,     ///< path no longer names the file
  kFdTerminal = 1u << 1,     ///< a tty: reconnect to the restoring terminal
  kFdSeals = 1u << 2,        ///< `seals` holds the memfd's seals (issue 17)
  kFdLinkedElsewhere = 1u << 3,  ///< unlinked name, but the file still has a name restore was not given
};

/// CkptNote::Pipes: bytes sitting in a pipe or FIFO buffer, read without
/// consuming them.
struct PipeRecord {
  u32 pipe_id;
  u32 capacity;              ///< F_GETPIPE_SZ
  u64 ino;
  BlobRef data;
};
static_assert(sizeof(PipeRecord) == 32);

/// CkptNote::Locks: a lock or lease held through an fd's open file, as
/// /proc/PID/fdinfo/FD lists it ("lock:" lines). An fd that shares its
/// open file with others has the same lines: one record per fd and line.
struct LockRecord {
  i32 pid;
  i32 fd;
  u32 kind;                  ///< LockKind
  u32 type;                  ///< F_RDLCK (0) or F_WRLCK (1)
  u64 start;                 ///< first byte (Posix, Ofd); 0 otherwise
  u64 end;                   ///< last byte, inclusive; kLockToEof = to the end of the file
};
static_assert(sizeof(LockRecord) == 32);

inline constexpr u64 kLockToEof = ~u64(0);

enum class LockKind : u32 {
  Flock = 0,                 ///< flock(2): owned by the open file
  Posix = 1,                 ///< fcntl(F_SETLK): owned by the process
  Ofd = 2,                   ///< fcntl(F_OFD_SETLK): owned by the open file
  Lease = 3,                 ///< fcntl(F_SETLEASE), not being broken
};

/// CkptNote::StoredFiles: the bytes of a file that still had a name at the
/// dump, stored on request (imgtool dump --store-tmpfs-files) because it
/// lives in memory (tmpfs, ramfs) and may be gone by the time of the
/// restore: a JVM's hsperfdata file, a socket's lock file. Restore
/// recreates it at `path` when nothing is there any more.
struct StoredFileRecord {
  u64 dev;                  ///< st_dev of the file, as FdRecord::dev
  u64 ino;
  u64 size;                 ///< st_size at the dump (= content.length)
  i64 mtime_ns;
  u32 mode;                 ///< st_mode
  u32 uid;
  u32 gid;
  u32 pad0;
  StrRef path;
  BlobRef content;
  // Format 1.4 on (zero from older writers: derived from dev):
  u32 dev_major;            ///< major(st_dev)
  u32 dev_minor;            ///< minor(st_dev)
};
static_assert(sizeof(StoredFileRecord) == 80);
static_assert(offsetof(StoredFileRecord, dev_major) == 72);

}  // namespace ckpt::img
