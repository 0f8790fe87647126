// Records of the image as a whole: its identity, the tree of processes it
// holds, the image it builds on, and its checksums. Part of records.h.
#pragma once

#include <ckpt/img/records_refs.h>

namespace ckpt::img {

/// CkptNote::Identity. Exactly one record.
struct IdentityRecord {
  u8 image_id[16];          ///< random, names this image for increments
  u64 created_sec;          ///< CLOCK_REALTIME at the freeze
  u32 created_nsec;
  u32 format_minor;         ///< kFormatMinor of the writer
  i64 checkpoint_id;        ///< what ckpt_checkpoint() returned (>0)
  u64 xsave_features;       ///< XCR0 of the dumping CPU
  u32 xsave_size;           ///< bytes of each NT_X86_XSTATE
  u32 page_size;
  u32 flags;                ///< IdentityFlags
  i32 root_pid;             ///< pid of the process the core notes describe
  u32 process_count;        ///< processes in the whole image (root + Tree)
  u32 pad0;
  StrRef kernel_release;    ///< uname -r of the dumping machine
  StrRef hostname;
  StrRef writer;            ///< e.g. "imgtool dump 0.1.0"
};
static_assert(sizeof(IdentityRecord) == 96);

enum IdentityFlags : u32 {
  kIdentityIncremental = 1u << 0,  ///< some pages live in the parent image
  kIdentitySelf = 1u << 1,         ///< written by ckpt_checkpoint() in-process
  kIdentityRestorable = 1u << 2,   ///< the writer captured all state restore needs
};

/// CkptNote::Tree: one per process other than the root. Each is a complete
/// ELF core of its own, page-aligned inside this file.
/// Records come parents before children; the embedded cores of live
/// processes lie in record order (ascending offset). A zombie has none.
struct TreeRecord {
  i32 pid;
  i32 ppid;
  u64 offset;               ///< of the embedded core's ELF header; 0 for a zombie
  u64 size;                 ///< bytes of the embedded core; 0 for a zombie
  // Format 1.2 on (older readers see the 24 bytes above only):
  i32 pgid;                 ///< process group
  i32 sid;                  ///< session
  i32 creator_tid;          ///< the parent's thread that forked it (task/TID/children); 0 unknown
  u32 flags;                ///< TreeFlags
  i32 wait_status;          ///< kTreeZombie: what waitpid() will report (stat field 52)
  i32 exit_signal;          ///< signal the parent gets on its exit (stat field 38)
  StrRef comm;              ///< process name (the only one a zombie has)
};
static_assert(sizeof(TreeRecord) == 56);
static_assert(offsetof(TreeRecord, pgid) == 24 && offsetof(TreeRecord, comm) == 48);

/// TreeRecord::flags.
enum TreeFlags : u32 {
  kTreeZombie = 1u << 0,    ///< exited, not yet reaped: no embedded core
};

/// CkptNote::Parent: the image an incremental image builds on.
struct ParentRecord {
  u8 image_id[16];          ///< the parent's IdentityRecord::image_id
  StrRef path_hint;         ///< as given to --parent
};
static_assert(sizeof(ParentRecord) == 24);

/// CkptNote::Integrity: xxh3-64 checksums, in the last PT_NOTE. The final
/// record has kind SelfCheck and covers every byte of this note before it.
struct IntegrityRecord {
  u32 kind;                 ///< IntegrityKind
  u32 index;                ///< program header or note index
  u64 offset;               ///< first byte covered
  u64 size;                 ///< bytes covered
  u64 xxh3;
};
static_assert(sizeof(IntegrityRecord) == 32);

enum class IntegrityKind : u32 {
  Headers = 0,       ///< ELF header and program header table
  Note = 1,          ///< one note of the first PT_NOTE (index = note number)
  Segment = 2,       ///< one PT_LOAD's file bytes (index = phdr index)
  Prefix = 3,        ///< bytes before the integrity note (index 1: those no Segment or embedded core covers)
  SelfCheck = 4,     ///< this note up to this record
  ZeroBlock = 5,     ///< the shared zero block read by zero segments
};

}  // namespace ckpt::img
