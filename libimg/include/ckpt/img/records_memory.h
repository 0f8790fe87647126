// Records of a process's memory: its mappings, where each page range's
// bytes are, guard pages, the dirty-page tracker and pages stored once by
// an earlier core of a tree. Part of records.h.
#pragma once

#include <ckpt/img/records_refs.h>

namespace ckpt::img {

/// CkptNote::Vmas: one per mapping, in address order per process.
struct VmaRecord {
  u64 start, end;
  u64 pgoff;                ///< file offset in bytes
  u32 prot;                 ///< PROT_* bits
  u32 flags;                ///< VmaFlags
  u32 kind;                 ///< VmaKind
  i32 pid;
  u64 dev;                  ///< (major << 8) | minor of the mapped file's device
  u64 ino;
  u64 file_size;
  i64 file_mtime_ns;
  StrRef path;
  BlobRef build_id;         ///< GNU build-id of an ELF object, raw bytes
  u32 first_range;          ///< index into PageRanges
  u32 range_count;
  u64 page_size;            ///< smaps KernelPageSize in bytes (a hugetlb
                            ///< mapping's huge page size); 0 from writers
                            ///< before format minor 1: the base page size
  // Format 1.4 on (zero from older writers: file_identity() derives them
  // from dev, which keeps its old encoding for older readers):
  u32 dev_major;            ///< the device as /proc/PID/maps shows it, MAJ:MIN
  u32 dev_minor;
  // Format 1.8 on (zero from older writers, and kVmaSeals clear):
  u32 seals;                ///< with kVmaSeals: F_GET_SEALS of the mapped memfd
  // Format 1.9 on (zero from older writers, and kVmaMode clear):
  u32 mode;                 ///< with kVmaMode: st_mode & 07777 of the mapped memfd or deleted file
};
static_assert(sizeof(VmaRecord) == 128);
static_assert(offsetof(VmaRecord, dev_major) == 112);
static_assert(offsetof(VmaRecord, seals) == 120 && offsetof(VmaRecord, mode) == 124);

enum VmaFlags : u32 {
  kVmaShared = 1u << 0,       ///< MAP_SHARED (otherwise private)
  kVmaGrowsDown = 1u << 1,
  kVmaDontDump = 1u << 2,
  kVmaLocked = 1u << 3,
  kVmaHugePage = 1u << 4,     ///< MADV_HUGEPAGE
  kVmaNoHugePage = 1u << 5,
  kVmaDeletedFile = 1u << 6,  ///< the mapped file was unlinked
  kVmaDontFork = 1u << 7,
  kVmaWipeOnFork = 1u << 8,
  kVmaLockOnFault = 1u << 9,  ///< with kVmaLocked: mlock2(MLOCK_ONFAULT)
  kVmaNoReserve = 1u << 10,   ///< MAP_NORESERVE (VM_NORESERVE, smaps "nr")
  kVmaMayWrite = 1u << 11,    ///< a shared mapping that mprotect may make writable
                              ///< (VM_MAYWRITE, smaps "mw": the file was opened for writing)
  kVmaSeals = 1u << 12,       ///< a shared mapping of a memfd: `seals` holds its F_GET_SEALS
  kVmaAccount = 1u << 13,     ///< format 1.9: a private mapping charged to commit (VM_ACCOUNT, smaps "ac")
  kVmaMode = 1u << 14,        ///< format 1.9: a shared mapping of a memfd or deleted file: `mode` holds its mode
};

enum class VmaKind : u32 {
  Anon = 0,
  File = 1,
  Heap = 2,
  Stack = 3,
  Vdso = 4,
  Vvar = 5,
  VvarVclock = 6,
  Vsyscall = 7,
  SharedAnon = 8,   ///< MAP_SHARED|MAP_ANONYMOUS (shmem)
  SysvShm = 9,
  Hugetlb = 10,     ///< MAP_HUGETLB anonymous memory, private or shared
};

/// CkptNote::PageRanges: a VMA's bytes, split by where they come from.
/// Ranges of one VMA are contiguous, ascending and cover it exactly.
struct PageRangeRecord {
  u64 start;
  u64 length;
  u32 source;          ///< PageSource
  u32 segment;         ///< for Image: program header index holding the bytes
};
static_assert(sizeof(PageRangeRecord) == 24);

enum class PageSource : u32 {
  Image = 0,     ///< in this file, in PT_LOAD `segment` at start - p_vaddr
  Zero = 1,      ///< never touched or all zero: reads as zeros
  File = 2,      ///< unchanged from the mapped file
  Parent = 3,    ///< in the parent image (CkptNote::Parent)
  Absent = 4,    ///< not captured (e.g. VM_IO, [vvar]); restore recreates
  /// Format 1.5: identical to bytes an earlier core of the same tree image
  /// stores (memory still shared copy-on-write since fork); `segment` is the
  /// index of the CowPages record that says where (FORMAT.md §9.23).
  Earlier = 5,
};

/// CkptNote::GuardRanges: pages made guard pages by
/// madvise(MADV_GUARD_INSTALL) (Linux 6.13+; a fault there raises SIGSEGV),
/// found with PAGEMAP_SCAN's PAGE_IS_GUARD. Ascending, within one VMA each.
struct GuardRangeRecord {
  i32 pid;
  u32 pad0;
  u64 start;
  u64 length;
};
static_assert(sizeof(GuardRangeRecord) == 24);

/// CkptNote::DirtyTracking (format 1.4, FORMAT.md §9.20): the dirty-page
/// tracker a dump left armed in the process, and how an incremental
/// image's pages were chosen against its parent.
/// A later `dump --parent` of the image trusts tracking only if it finds
/// the tracker with this inode in the same process (pid, start time, boot)
/// and only in `armed` ranges still registered.
struct DirtyTrackingRecord {
  u8 boot_id[16];           ///< /proc/sys/kernel/random/boot_id of the dump
  u64 tracker_ino;          ///< inode of the tracker armed at this dump; 0: none armed
  u64 start_time;           ///< the process's start (stat field 22, clock ticks since boot)
  i32 pid;
  u32 flags;                ///< DirtyTrackingFlags
  u64 tracked_bytes;        ///< --parent: candidate bytes tracking decided (not read)
  u64 written_bytes;        ///< of those, bytes written since the parent (stored)
  u64 compared_bytes;       ///< --parent: bytes compared with the parent byte for byte
  BlobRef armed;            ///< u64 pairs [start, end): ranges registered and write-protected
};
static_assert(sizeof(DirtyTrackingRecord) == 80);

/// DirtyTrackingRecord::flags.
enum DirtyTrackingFlags : u32 {
  kTrackingUsed = 1u << 0,  ///< tracking since the parent decided some pages of this image
};

/// CkptNote::CowPages (format 1.5, FORMAT.md §9.23): in an embedded core of
/// a tree image, one record per page range of source PageSource::Earlier
/// (the range's `segment` is the record's index): the bytes of
/// [start, start + length) of this process are stored once, by an earlier
/// core of the same file, at `file_offset` of the whole file. libimg's
/// writer computes `file_offset` from `source_pid` and `source_addr`.
struct CowPagesRecord {
  u64 start;                ///< first address in this process, page-aligned
  u64 length;               ///< bytes, a multiple of 4096, > 0
  u64 file_offset;          ///< of the bytes in the whole file (core form), page-aligned
  u64 source_addr;          ///< where the source process has these bytes
  i32 source_pid;           ///< the process (root or an earlier Tree record) whose core stores them
  i32 pid;                  ///< this process
};
static_assert(sizeof(CowPagesRecord) == 40);
static_assert(offsetof(CowPagesRecord, file_offset) == 16 && offsetof(CowPagesRecord, source_pid) == 32);

}  // namespace ckpt::img
