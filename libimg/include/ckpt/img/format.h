// The ckpt image format: constants and the fixed layouts of the standard
// Linux core notes on x86-64. docs/FORMAT.md is the normative text; this
// header is its C++ transcription, and nothing outside libimg hard-codes any
// number found here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ckpt::img {

using u8 = uint8_t;
using u16 = uint16_t;
using u32 = uint32_t;
using u64 = uint64_t;
using i16 = int16_t;
using i32 = int32_t;
using i64 = int64_t;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the image format is little-endian and libimg copies records as bytes");

// ---- ELF identification -------------------------------------------------

/// e_ident[EI_PAD..EI_PAD+3] of every ckpt image; EI_PAD+4 holds the major
/// format version. Ordinary cores have zeros there.
inline constexpr u8 kIdentMarker[4] = {'C', 'K', 'P', 'T'};
inline constexpr int kIdentMarkerOffset = 9;   // EI_PAD
inline constexpr int kIdentVersionOffset = 13;
/// Major version: bumped only when an old reader would misread a new image.
/// Minor growth (new notes, longer records) never bumps it.
inline constexpr u8 kFormatMajor = 1;
/// Minor version, stored in IdentityRecord::format_minor.
inline constexpr u32 kFormatMinor = 9;

inline constexpr u64 kPageSize = 4096;

// ---- The core and the exec form (FORMAT.md §12.3) -----------------------

/// Bytes 64..127 of a core-form image are zero: the exec form keeps the
/// core ELF header there while its own (executable) ELF header is at 0.
/// Program headers therefore start at 128 in images of format minor >= 2;
/// readers still take older images with e_phoff 64 (which cannot be
/// converted).
inline constexpr u64 kSavedCoreHeaderOffset = 64;
inline constexpr u64 kPhdrOffset = 128;

// ---- Note owners and types ------------------------------------------------

inline constexpr char kOwnerCore[] = "CORE";
inline constexpr char kOwnerLinux[] = "LINUX";
/// The project's own note owner. Its note types avoid every number that
/// BFD's owner-blind elfcore_grok_note interprets (1, 2, 3, 6, 10, 13, 16,
/// 18, NT_FILE, NT_SIGINFO): they all have 0x434b ("CK") in the top half.
inline constexpr char kOwnerCkpt[] = "CKPT";

enum : u32 {
  kNtPrstatus = 1,
  kNtFpregset = 2,
  kNtPrpsinfo = 3,
  kNtAuxv = 6,
  kNtX86Xstate = 0x202,
  kNtSiginfo = 0x53494749,
  kNtFile = 0x46494c45,
};

/// Which records a CKPT note holds: one per image, per process (the record
/// has a pid), per thread (a pid and a tid) or per VMA (reached from its
/// VmaRecord's first_range/range_count).
enum class NoteScope : u8 { Image, Process, Thread, Vma };
/// How many records a table note holds: any number (an empty table is not
/// written), exactly one (the note must be there), or an optional one.
enum class NoteCount : u8 { Many, One, OptionalOne };

/// The registry of CKPT table notes (owner "CKPT", table encoding of
/// table.h, version 1), one line each, in type order, which is their order
/// in PT_NOTE 0:
///   X(Name, type, Record, builder, view, scope, count, "notes", "record")
/// Name is the CkptNote enumerator; Record the record struct (records.h; a
/// reader accepts any record_size >= kMinRecordSize and zero-fills what it
/// did not get); builder the TableBuilder<Record> member of ImageNotes and
/// view the Table<Record> member of CkptView, both generated from this list,
/// as are the encoding, the decoding and `imgtool info`'s list of notes;
/// the two strings name the note and one record in errors. Every Record
/// needs its for_each_ref() (note_kinds.h) or nothing builds: that is the
/// decoding's cross-check of its strings and blobs.
/// docs/design/adding-a-note-kind.md is the recipe.
#define CKPT_NOTE_KINDS(X)                                                                                  \
  X(Identity, 0x434b0001, IdentityRecord, identity, identity_table, Image, One, "identity", "identity")      \
  X(Tasks, 0x434b0002, TaskRecord, tasks, tasks, Process, Many, "tasks", "task")                             \
  X(Threads, 0x434b0003, ThreadRecord, thread_records, threads, Thread, Many, "threads", "thread")           \
  X(Vmas, 0x434b0004, VmaRecord, vmas, vmas, Process, Many, "vmas", "VMA")                                   \
  X(PageRanges, 0x434b0005, PageRangeRecord, ranges, ranges, Vma, Many, "page ranges", "page range")         \
  X(Fds, 0x434b0006, FdRecord, fds, fds, Process, Many, "fds", "fd")                                         \
  X(Pipes, 0x434b0007, PipeRecord, pipes, pipes, Image, Many, "pipes", "pipe")                               \
  X(SigActions, 0x434b0008, SigActionRecord, sigactions, sigactions, Process, Many, "signal actions",       \
    "signal action")                                                                                         \
  X(PendingSignals, 0x434b0009, PendingSignalRecord, pending, pending, Process, Many, "pending signals",    \
    "pending signal")                                                                                        \
  X(Timers, 0x434b000a, TimerRecord, timers, timers, Process, Many, "timers", "timer")                       \
  X(Rlimits, 0x434b000b, RlimitRecord, rlimits, rlimits, Process, Many, "rlimits", "rlimit")                 \
  X(Tree, 0x434b000c, TreeRecord, tree, tree, Process, Many, "tree", "tree")                                 \
  X(Parent, 0x434b000d, ParentRecord, parent, parent, Image, OptionalOne, "parent", "parent")                \
  X(SeccompFilters, 0x434b000e, SeccompFilterRecord, seccomp_filters, seccomp_filters, Thread, Many,        \
    "seccomp filters", "seccomp filter")                                                                     \
  X(StoredFiles, 0x434b0010, StoredFileRecord, stored_files, stored_files, Image, Many, "stored files",      \
    "stored file")                                                                                           \
  X(Locks, 0x434b0038, LockRecord, locks, locks, Process, Many, "locks", "lock")                             \
  X(GuardRanges, 0x434b0039, GuardRangeRecord, guard_ranges, guard_ranges, Process, Many, "guard ranges",   \
    "guard range")                                                                                           \
  X(DirtyTracking, 0x434b0040, DirtyTrackingRecord, dirty_tracking, dirty_tracking, Image, Many,            \
    "dirty tracking", "dirty tracking record")                                                               \
  X(SysvIpc, 0x434b0058, SysvIpcRecord, sysv_ipc, sysv_ipc, Image, Many, "SysV IPC objects",                \
    "SysV IPC object")                                                                                       \
  X(IpcNamespace, 0x434b0059, IpcNamespaceRecord, ipc_namespace, ipc_namespace, Image, Many, "IPC namespace", \
    "IPC namespace")                                                                                         \
  X(CowPages, 0x434b0070, CowPagesRecord, cow_pages, cow_pages, Vma, Many, "copy-on-write pages",           \
    "copy-on-write page range")

/// Note types of owner "CKPT": the table notes of CKPT_NOTE_KINDS, and the
/// integrity note, which libimg's writer makes itself (writer.h) alone in
/// the last PT_NOTE.
enum class CkptNote : u32 {
#define CKPT_NOTE_ENUMERATOR(name, type, ...) name = type,
  CKPT_NOTE_KINDS(CKPT_NOTE_ENUMERATOR)
#undef CKPT_NOTE_ENUMERATOR
  Integrity = 0x434b00ff,    ///< IntegrityRecord; alone in the last PT_NOTE
};

// ---- Standard core note layouts (x86-64) --------------------------------
// Field order and sizes are the kernel's (include/uapi/linux/elfcore.h);
// elfutils accepts PRSTATUS and PRPSINFO only at exactly these sizes.

/// struct user_regs_struct, in ptrace order.
struct UserRegs {
  u64 r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
  u64 rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
  u64 fs_base, gs_base, ds, es, fs, gs;
};
static_assert(sizeof(UserRegs) == 216);

struct CoreTimeval {
  i64 tv_sec;
  i64 tv_usec;
};

/// NT_PRSTATUS desc (owner CORE), one per thread.
struct PrStatus {
  i32 si_signo, si_code, si_errno;
  i16 pr_cursig;
  u16 pad0;
  u64 pr_sigpend;
  u64 pr_sighold;
  i32 pr_pid, pr_ppid, pr_pgrp, pr_sid;
  CoreTimeval pr_utime, pr_stime, pr_cutime, pr_cstime;
  UserRegs pr_reg;
  i32 pr_fpvalid;
  u32 pad1;
};
static_assert(sizeof(PrStatus) == 336);
static_assert(offsetof(PrStatus, pr_reg) == 112);

/// NT_PRPSINFO desc (owner CORE), one per process.
struct PrPsInfo {
  char pr_state;
  char pr_sname;
  char pr_zomb;
  char pr_nice;
  u32 pad0;
  u64 pr_flag;
  u32 pr_uid, pr_gid;
  i32 pr_pid, pr_ppid, pr_pgrp, pr_sid;
  char pr_fname[16];
  char pr_psargs[80];
};
static_assert(sizeof(PrPsInfo) == 136);

/// NT_FPREGSET desc (owner CORE): the 512-byte FXSAVE area.
inline constexpr size_t kFpregsetSize = 512;
/// NT_SIGINFO desc (owner CORE): a kernel siginfo_t.
inline constexpr size_t kSiginfoSize = 128;
/// Byte offset of XCR0 inside the software-reserved bytes of NT_X86_XSTATE,
/// where Linux (and gdb's I386_LINUX_XSAVE_XCR0_OFFSET) keep it.
inline constexpr size_t kXstateXcr0Offset = 464;

// ---- Program header layout rules ----------------------------------------

/// Past this many program headers, e_phnum holds PN_XNUM and the real count
/// is in section header 0's sh_info.
inline constexpr u32 kPnXnum = 0xffff;

}  // namespace ckpt::img
