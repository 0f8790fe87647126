// Records of System V IPC: the objects an image holds and the IPC
// namespace the tree lives in. Part of records.h.
#pragma once

#include <ckpt/img/records_refs.h>

namespace ckpt::img {

/// CkptNote::SysvIpc (format 1.4): one per System V IPC object the image
/// holds (decision 141: every object of an IPC namespace of the tree's own;
/// in the host's, the shm segments the tree has attached). Only the root
/// image of a tree has this note.
struct SysvIpcRecord {
  u32 kind;                 ///< SysvIpcKind
  i32 id;                   ///< shmid / semid / msqid, as the program holds it
  i32 key;                  ///< IPC key; 0 = IPC_PRIVATE (also after IPC_RMID)
  u32 mode;                 ///< ipc_perm.mode: permission bits, and for shm SHM_DEST (01000) and SHM_LOCKED (02000)
  u32 uid, gid;             ///< owner (IPC_SET can change them)
  u32 cuid, cgid;           ///< creator (the kernel's; restore cannot set them)
  i32 cpid, lpid;           ///< shm: creator and last shmat/shmdt pid; 0 otherwise
  u32 count;                ///< sem: semaphores in the set; msg: messages queued; shm: 0
  u32 flags;                ///< SysvIpcFlags
  u64 size;                 ///< shm: segment size in bytes; msg: msg_qbytes (the queue's limit); sem: 0
  BlobRef data;             ///< shm: the segment's bytes (size of them); sem: u16 value per semaphore;
                            ///< msg: per message in queue order an i64 mtype, a u64 length, the bytes, zeros to 8
};
static_assert(sizeof(SysvIpcRecord) == 72);
static_assert(offsetof(SysvIpcRecord, size) == 48);

enum SysvIpcFlags : u32 {
  /// In a further process of a tree: a shm segment this process attaches,
  /// whose state (and data) is in the root image's record of the same id.
  kSysvIpcInRoot = 1u << 0,
};

enum class SysvIpcKind : u32 {
  Shm = 0,
  Sem = 1,
  Msg = 2,
};

/// SysvIpcRecord::mode bits of shm segments (linux/shm.h).
inline constexpr u32 kSysvShmDest = 01000;    ///< IPC_RMID done, gone at the last detach
inline constexpr u32 kSysvShmLocked = 02000;  ///< shmctl(SHM_LOCK)

/// Header of one message in a Msg record's data; the body follows, padded
/// with zeros to a multiple of 8 bytes.
struct SysvMessageHeader {
  i64 mtype;
  u64 length;
};
static_assert(sizeof(SysvMessageHeader) == 16);

/// CkptNote::IpcNamespace (format 1.4): the IPC namespace the tree lives in.
/// Absent: the host's (the dumper's), and SysvIpc holds attached shm only.
struct IpcNamespaceRecord {
  u32 flags;                ///< IpcNamespaceFlags
  u32 pad0;
  u64 ns_inode;             ///< /proc/PID/ns/ipc inode at the dump (informative)
};
static_assert(sizeof(IpcNamespaceRecord) == 16);

enum IpcNamespaceFlags : u32 {
  kIpcNsOwn = 1u << 0,      ///< not the dumper's: restore makes a new one (unshare(CLONE_NEWIPC))
};

}  // namespace ckpt::img
