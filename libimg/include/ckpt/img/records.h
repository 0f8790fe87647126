// Records of the CKPT notes. Each struct is the exact little-endian layout
// of one record (docs/FORMAT.md gives the byte offsets): fixed-width fields,
// explicit padding, every u64 at an 8-aligned offset, so the layout is the
// same for 32- and 64-bit builds. A record only ever grows at its end; a
// reader fills fields that an older writer did not know with zeros.
#pragma once

#include <ckpt/img/format.h>

namespace ckpt::img {

/// A string in a table note's data area (not NUL-terminated).
struct StrRef {
  u32 offset = 0;
  u32 length = 0;
};
/// A byte range in a table note's data area.
struct BlobRef {
  u64 offset = 0;
  u64 length = 0;
};

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

/// CkptNote::Tasks: one per process.
struct TaskRecord {
  i32 pid, ppid, pgid, sid;
  u32 uid[4];                     ///< real, effective, saved, fs
  u32 gid[4];
  u64 cap_inheritable, cap_permitted, cap_effective, cap_bounding, cap_ambient;
  u32 umask;
  u32 personality;
  i32 nice;
  u32 flags;                      ///< TaskFlags
  i32 exit_signal;
  u32 thread_count;
  // mm fields, as prctl(PR_SET_MM_MAP) takes them
  u64 start_code, end_code, start_data, end_data;
  u64 start_brk, brk, start_stack;
  u64 arg_start, arg_end, env_start, env_end;
  StrRef comm;
  StrRef cwd;
  StrRef root;
  StrRef exe;
  BlobRef groups;                 ///< u32 supplementary gids
  BlobRef auxv;                   ///< the raw saved auxv (also in NT_AUXV)
  // Process settings (issue 17). Older writers' records end above: they
  // read as zeros, settings without kTaskSettingsCaptured, and restore
  // then leaves these as it finds them.
  i32 oom_score_adj;              ///< /proc/PID/oom_score_adj
  u32 loginuid;                   ///< /proc/PID/loginuid; 0xffffffff = unset
  u32 settings;                   ///< TaskSettings
  u32 membarrier;                 ///< membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS)
  StrRef cgroup;                  ///< /proc/PID/cgroup as read ("" when not captured)
  // Format 1.4 on (older writers' records end above: no settings).
  StrRef cgroup_settings;         ///< settings of its cgroups (img/cgroups.h), for making them again
  // Format 1.6 on (older writers' records end above: zeros, "unknown").
  // Which process this is, for `dump --parent` of a tree (FORMAT.md §12.2):
  // a pid is the same process only with the same start time in the same boot.
  u64 start_time;                 ///< /proc/PID/stat field 22 (clock ticks since boot)
  u8 boot_id[16];                 ///< /proc/sys/kernel/random/boot_id of the dump
};
static_assert(sizeof(TaskRecord) == 320);
static_assert(offsetof(TaskRecord, start_time) == 296);
static_assert(offsetof(TaskRecord, oom_score_adj) == 264);

enum TaskFlags : u32 {
  kTaskStopped = 1u << 0,          ///< job-control stopped at dump time
  kTaskSessionLeader = 1u << 1,
  kTaskGroupLeader = 1u << 2,
  kTaskDumpable = 1u << 3,
};

/// TaskRecord::settings.
enum TaskSettings : u32 {
  kTaskSettingsCaptured = 1u << 0,  ///< oom_score_adj, loginuid, membarrier and these bits are valid
  kTaskChildSubreaper = 1u << 1,    ///< prctl(PR_SET_CHILD_SUBREAPER, 1)
  kTaskThpDisabled = 1u << 2,       ///< prctl(PR_SET_THP_DISABLE, 1)
  kTaskThpExceptAdvised = 1u << 3,  ///< with PR_THP_DISABLE_EXCEPT_ADVISED (Linux 6.18)
  kTaskMlockFuture = 1u << 4,       ///< mlockall(MCL_FUTURE): new mappings are locked
  kTaskMlockFutureOnFault = 1u << 5,  ///< with MCL_ONFAULT
};

/// CkptNote::Threads: one per thread; registers are in the thread's
/// NT_PRSTATUS/NT_FPREGSET/NT_X86_XSTATE, matched by tid.
struct ThreadRecord {
  i32 tid;
  i32 pid;                  ///< owning process
  u64 fs_base, gs_base;
  u64 sigmask;              ///< blocked signals
  u64 altstack_sp, altstack_size;
  u32 altstack_flags;
  u32 flags;                ///< ThreadFlags
  u64 rseq_addr;
  u32 rseq_len, rseq_sig;
  u64 robust_list, robust_list_len;
  u64 clear_child_tid;
  // The syscall this thread was in when frozen. NT_PRSTATUS keeps the
  // registers exactly as ptrace reported them (what gdb expects); these
  // fields carry the kernel's restart decision for restore.
  i64 syscall_nr;           ///< orig_rax, or -1 when not in a syscall
  i64 syscall_result;       ///< rax as seen, e.g. -ERESTARTSYS (-512)
  u32 restart;              ///< SyscallRestart
  u32 pad0;
  u64 restart_rip;          ///< rip to resume at for a restart
  u64 restart_rax;          ///< rax to resume with for a restart
  StrRef comm;              ///< thread name
  // Privilege state (credentials are per thread in the kernel). Valid only
  // with kThreadPrivileges; an older image has zeros here and restore then
  // uses the TaskRecord's capability sets for every thread.
  u64 cap_inheritable, cap_permitted, cap_effective, cap_bounding, cap_ambient;
  u32 securebits;           ///< prctl(PR_GET_SECUREBITS)
  u32 seccomp_mode;         ///< SeccompMode
  u32 seccomp_filter_count; ///< SeccompFilterRecords of this thread
  u32 pad1;
};
static_assert(sizeof(ThreadRecord) == 200);

enum ThreadFlags : u32 {
  kThreadInSyscall = 1u << 0,
  kThreadLeader = 1u << 1,
  kThreadPrivileges = 1u << 2,   ///< the cap_*/securebits/seccomp fields are valid
  kThreadNoNewPrivs = 1u << 3,   ///< prctl(PR_SET_NO_NEW_PRIVS) was set
};

/// /proc/PID/status "Seccomp:" (SECCOMP_MODE_* of linux/seccomp.h).
enum class SeccompMode : u32 {
  Disabled = 0,
  Strict = 1,
  Filter = 2,
};

enum class SyscallRestart : u32 {
  None = 0,           ///< not in a syscall, or it completed
  Restart = 1,        ///< -ERESTARTNOINTR / -ERESTARTSYS with SA_RESTART
  Interrupt = 2,      ///< return -EINTR
  RestartBlock = 3,   ///< -ERESTART_RESTARTBLOCK: call restart_syscall
};

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
};
static_assert(sizeof(VmaRecord) == 120);
static_assert(offsetof(VmaRecord, dev_major) == 112);

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

/// FdRecord::state, in the Fds table's data area: a kind's state that the
/// common fields have no room for, length-prefixed and versioned per kind
/// (docs/FORMAT.md §9.7). A reader copies the fields it knows of a longer
/// state and zero-fills a shorter one; it refuses a version it does not know.
struct FdStateHeader {
  u32 size;                 ///< bytes of the state, this header included
  u32 version;              ///< of the kind's layout
};
static_assert(sizeof(FdStateHeader) == 8);

/// FdType::EventFd's state, version 1.
struct EventFdState {
  static constexpr u32 kVersion = 1;
  FdStateHeader header;
  u64 count;                ///< the counter (fdinfo "eventfd-count", hex)
  u32 flags;                ///< EventFdFlags
  u32 pad0;
};
static_assert(sizeof(EventFdState) == 24);

enum EventFdFlags : u32 {
  kEventFdSemaphore = 1u << 0,  ///< made with EFD_SEMAPHORE (fdinfo "eventfd-semaphore: 1")
};

/// FdType::TimerFd's state, version 1 (fdinfo "clockid:", "ticks:",
/// "settime flags:", "it_value:", "it_interval:").
struct TimerFdState {
  static constexpr u32 kVersion = 1;
  FdStateHeader header;
  i32 clock_id;             ///< CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, *_ALARM
  u32 settime_flags;        ///< TFD_TIMER_ABSTIME (1), TFD_TIMER_CANCEL_ON_SET (2)
  u64 ticks;                ///< expirations not read yet
  u64 value_ns;             ///< time left to the next expiry at the dump; 0 = disarmed
  u64 interval_ns;
  i64 expiry_ns;            ///< TFD_TIMER_ABSTIME: the next expiry on clock_id's clock
};
static_assert(sizeof(TimerFdState) == 48);

/// FdType::SignalFd's state, version 1.
struct SignalFdState {
  static constexpr u32 kVersion = 1;
  FdStateHeader header;
  u64 sigmask;              ///< fdinfo "sigmask:": bit N-1 = signal N
};
static_assert(sizeof(SignalFdState) == 16);

/// FdType::Inotify's state, version 1: this header, then watch_count
/// InotifyWatch entries in ascending wd, each followed by its path
/// (path_length bytes, no NUL) and zero bytes to the next multiple of 8.
struct InotifyState {
  static constexpr u32 kVersion = 1;
  FdStateHeader header;
  u32 watch_count;
  u32 pad0;
};
static_assert(sizeof(InotifyState) == 16);

/// One watch of an inotify fd (fdinfo "inotify wd:.. ino:.. sdev:.. mask:..").
struct InotifyWatch {
  i32 wd;                   ///< watch descriptor, as the program holds it
  u32 mask;                 ///< IN_* events and IN_ONESHOT / IN_EXCL_UNLINK
  u64 ino;                  ///< the watched inode
  u64 dev;                  ///< its st_dev
  u32 path_length;          ///< bytes of the path that follows
  u32 pad0;
};
static_assert(sizeof(InotifyWatch) == 32);
/// The state of a file restore recreates from its bytes (FdType::Regular
/// with kFdUnlinked, FdType::MemFd), version 1: its owner, and where its
/// data lies (the rest are holes, which stay holes). Then, at
/// extents_offset, extent_count DataExtents in ascending order.
struct RecreatedFileState {
  static constexpr u32 kVersion = 1;
  FdStateHeader header;
  u32 uid;                  ///< st_uid
  u32 gid;                  ///< st_gid
  u32 extents_offset;       ///< where the DataExtents start (the fixed part's size)
  u32 extent_count;
  u64 blocks;               ///< st_blocks at the dump (512-byte units), for `info`
};
static_assert(sizeof(RecreatedFileState) == 32);

/// A run of a file's bytes that holds data (SEEK_DATA to SEEK_HOLE).
struct DataExtent {
  u64 offset;
  u64 length;
};
static_assert(sizeof(DataExtent) == 16);

/// FdType::Socket's state for an AF_UNIX socket, version 1: the fixed
/// part below, then (at name_offset) the bound name and the queued
/// messages (docs/FORMAT.md §9.7). Other families have no state.
struct UnixSocketState {
  static constexpr u32 kVersion = 1;
  FdStateHeader header;     ///< size covers the fixed part and what follows
  u32 sock_type;            ///< SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5
  u32 flags;                ///< UnixSocketFlags
  u64 ino;                  ///< this socket's inode (FdRecord::ino)
  u64 peer_ino;             ///< the connected peer's inode; 0 for none or a closed one
  u32 shutdown;             ///< sk_shutdown: 1 receive side, 2 send side shut down
  u32 backlog;              ///< a listener's listen() backlog
  u32 rcvbuf;               ///< SO_RCVBUF as getsockopt reports it (twice what was set)
  u32 sndbuf;               ///< SO_SNDBUF likewise
  i32 peek_off;             ///< SO_PEEK_OFF, -1 when unused
  u32 file_mode;            ///< a path-bound socket's file permission bits
  u32 name_offset;          ///< where the name starts in this state (= the fixed part's size)
  u32 name_length;          ///< bytes of sun_path (abstract: a leading NUL); 0 unnamed
  u32 message_count;        ///< queued messages after the name (8-aligned)
  u32 pad0;
  u64 queued_bytes;         ///< sum of the messages' lengths
};
static_assert(sizeof(UnixSocketState) == 80);

enum UnixSocketFlags : u32 {
  kUnixListening = 1u << 0,         ///< listen() was called
  kUnixConnected = 1u << 1,         ///< has a peer (socketpair, connect, accept)
  kUnixPeerClosed = 1u << 2,        ///< connected, but the peer is closed
  kUnixPassCred = 1u << 3,          ///< SO_PASSCRED
  // Why a socket cannot come back; dump refuses an image with one of these.
  kUnixPeerOutside = 1u << 8,       ///< its peer is in no process of the image
  kUnixRightsInFlight = 1u << 9,    ///< SCM_RIGHTS queued in its receive queue
  kUnixPendingConnections = 1u << 10,  ///< a listener with connections not yet accepted
  kUnixOneWayPeer = 1u << 11,       ///< a datagram socket connected to one not connected back
};

/// A queued message in UnixSocketState's tail: this header, then `length`
/// bytes, then zeros up to a multiple of 8.
struct UnixMessageHeader {
  u32 length;
  u32 pad0;
};
static_assert(sizeof(UnixMessageHeader) == 8);

/// One target of FdType::Epoll's interest list (fdinfo "tfd: events: data:").
struct EpollTarget {
  i32 tfd;                  ///< the target's fd number when it was added
  u32 events;               ///< EPOLL* bits, EPOLLET/ONESHOT/EXCLUSIVE included
  u64 data;                 ///< epoll_data as registered
  u32 flags;                ///< EpollTargetFlags
  u32 pad0;
};
static_assert(sizeof(EpollTarget) == 24);

enum EpollTargetFlags : u32 {
  kEpollTargetOpen = 1u << 0,  ///< the process's fd `tfd` is still the target (kcmp KCMP_EPOLL_TFD)
};

/// FdType::Epoll's state, version 1: this, then target_count EpollTargets.
struct EpollState {
  static constexpr u32 kVersion = 1;
  FdStateHeader header;     ///< size covers the targets too
  u32 targets_offset;       ///< where the first EpollTarget starts (= the fixed part's size)
  u32 target_count;
};
static_assert(sizeof(EpollState) == 16);

/// FdType::Socket's state for a TCP or UDP socket over IPv4 or IPv6: its
/// own layout beside UnixSocketState's, told apart by the header's version
/// (AF_UNIX layouts 1..0xff, this one 0x101 for its version 1). Then the
/// receive queue's bytes, the send queue's bytes (TCP: each padded to 8),
/// then datagram_count queued UDP datagrams (InetDatagramHeader and bytes
/// padded to 8 each).
struct InetSocketState {
  static constexpr u32 kVersion = 0x101;
  FdStateHeader header;     ///< size covers the fixed part and what follows
  u32 family;               ///< AF_INET 2, AF_INET6 10
  u32 sock_type;            ///< SOCK_STREAM 1, SOCK_DGRAM 2
  u32 protocol;             ///< IPPROTO_TCP 6, IPPROTO_UDP 17
  u32 state;                ///< TCP_* (tcp_info): ESTABLISHED 1, CLOSE 7, LISTEN 10...; UDP 1 connected, 7 not
  u32 flags;                ///< InetSocketFlags
  u32 backlog;              ///< a listener's listen() backlog
  u8 local_addr[16];        ///< getsockname, network order (IPv4: first 4 bytes)
  u8 peer_addr[16];         ///< getpeername likewise; zeros when not connected
  u16 local_port;           ///< host order; 0 unbound
  u16 peer_port;            ///< host order; 0 not connected
  u32 rcvbuf;               ///< SO_RCVBUF as getsockopt reports it (twice what was set)
  u32 sndbuf;               ///< SO_SNDBUF likewise
  u32 keepidle;             ///< TCP_KEEPIDLE, seconds
  u32 keepintvl;            ///< TCP_KEEPINTVL, seconds
  u32 keepcnt;              ///< TCP_KEEPCNT
  u32 send_seq;             ///< repaired: TCP_QUEUE_SEQ of the send queue (write_seq, after its last byte)
  u32 recv_seq;             ///< repaired: TCP_QUEUE_SEQ of the receive queue (rcv_nxt)
  u32 mss;                  ///< repaired: TCP_MAXSEG
  u32 snd_wscale;           ///< repaired: tcp_info's tcpi_snd_wscale
  u32 rcv_wscale;           ///< repaired: tcpi_rcv_wscale
  u32 tcp_options;          ///< repaired: tcpi_options (TCPI_OPT_TIMESTAMPS 1, SACK 2, WSCALE 4)
  u32 timestamp;            ///< repaired: TCP_TIMESTAMP (the connection's timestamp clock)
  u32 snd_wl1;              ///< repaired: TCP_REPAIR_WINDOW's five fields
  u32 snd_wnd;
  u32 max_window;
  u32 rcv_wnd;
  u32 rcv_wup;
  u32 unsent_bytes;         ///< repaired: the send queue's tail never sent (SIOCOUTQNSD)
  u32 queues_offset;        ///< where the receive queue starts (= the fixed part's size)
  u32 recv_queue_length;    ///< TCP: bytes received, not yet read
  u32 send_queue_length;    ///< TCP: bytes written, not yet acknowledged
  u32 datagram_count;       ///< UDP: datagrams queued after the TCP queues
  u32 pad0;
};
static_assert(sizeof(InetSocketState) == 160);

enum InetSocketFlags : u32 {
  kInetReuseAddr = 1u << 0,         ///< SO_REUSEADDR
  kInetReusePort = 1u << 1,         ///< SO_REUSEPORT
  kInetNoDelay = 1u << 2,           ///< TCP_NODELAY
  kInetKeepAlive = 1u << 3,         ///< SO_KEEPALIVE
  kInetV6Only = 1u << 4,            ///< IPV6_V6ONLY
  kInetBroadcast = 1u << 5,         ///< SO_BROADCAST
  kInetRepaired = 1u << 6,          ///< an established TCP connection captured through TCP_REPAIR
  // Why a socket cannot come back; dump refuses an image with one of these.
  kInetPendingConnections = 1u << 8,  ///< a listener with connections not yet accepted
  kInetUnrestorableState = 1u << 9,   ///< a TCP state other than CLOSE, LISTEN, ESTABLISHED (named by `state`)
  kInetHalfClosed = 1u << 10,         ///< an established connection shut down one way (inet_diag shutdown)
};

/// A queued UDP datagram in InetSocketState's tail: this header, then
/// `length` bytes, then zeros up to a multiple of 8.
struct InetDatagramHeader {
  u32 length;
  u16 port;                 ///< the sender's port, host order
  u16 pad0;
  u8 addr[16];              ///< the sender's address, network order (IPv4: first 4 bytes)
};
static_assert(sizeof(InetDatagramHeader) == 24);

/// FdType::CharDevice's state for a terminal, version 1 (format 1.4): a
/// pty master (/dev/ptmx) or slave (/dev/pts/N), or the terminal the
/// program was run from (kFdTerminal). Termios and window size are the
/// pair's (a master's ioctls act on its slave). A master's queued bytes
/// follow in FdRecord::content: input_length bytes written to the master
/// and not yet read from the slave, then output_length bytes written to
/// the slave and not yet read from the master (docs/FORMAT.md §9.7).
struct TtyState {
  static constexpr u32 kVersion = 1;
  FdStateHeader header;
  u32 flags;                ///< TtyFlags
  u32 index;                ///< pty number: TIOCGPTN of a master, N of /dev/pts/N
  u32 c_iflag, c_oflag, c_cflag, c_lflag;  ///< TCGETS2
  u8 c_line;
  u8 c_cc[19];              ///< NCCS of struct termios2
  u32 c_ispeed, c_ospeed;
  u16 ws_row, ws_col, ws_xpixel, ws_ypixel;  ///< TIOCGWINSZ
  u32 owner_uid, owner_gid; ///< the slave's devpts inode (grantpt gives it to the opener)
  u32 file_mode;            ///< its st_mode permission bits
  i32 foreground_pgrp;      ///< the controlling terminal's: tpgid of /proc/PID/stat, else 0
  u32 input_length;         ///< a master's queued bytes, see above
  u32 output_length;
  u32 pad0;
};
static_assert(sizeof(TtyState) == 96);

enum TtyFlags : u32 {
  kTtyMaster = 1u << 0,         ///< /dev/ptmx (5:2)
  kTtySlave = 1u << 1,          ///< /dev/pts/N (majors 136..143)
  kTtyPacketMode = 1u << 2,     ///< TIOCGPKT (a master)
  kTtyLocked = 1u << 3,         ///< TIOCGPTLCK: the slave cannot be opened (a master)
  kTtyExclusive = 1u << 4,      ///< TIOCGEXCL on the slave
  kTtyControlling = 1u << 5,    ///< the process's controlling terminal (tty_nr)
  kTtyForeground = 1u << 6,     ///< ... with the process's group in the foreground (tpgid == pgrp)
  // Why a terminal cannot come back; dump refuses an image with one of these.
  kTtyMasterOutside = 1u << 8,  ///< a slave whose master no fd of its process holds
  kTtyPairIsControlling = 1u << 9,  ///< a pair's slave is the controlling terminal of its own process
  kTtyQueueUnreadable = 1u << 10,  ///< a master with bytes queued whose slave no fd of its process holds
};

/// The fd kinds, one line each: name and the number stored in
/// FdRecord::type (dense from 0; a new kind takes the next number). Every
/// fd kind registry (libimg/fd_kinds.h, writer/src/fd_kinds/,
/// reader/src/fd_kinds/) is a table of exactly kFdTypeCount entries that a
/// static_assert checks, so a kind added here without its dump, restore,
/// describe and preflight parts does not build (docs/DESIGN.md).
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

/// CkptNote::SigActions: one per process and signal that is not SIG_DFL.
struct SigActionRecord {
  i32 pid;
  u32 signo;
  u64 handler;              ///< SIG_DFL 0, SIG_IGN 1, or an address
  u64 flags;                ///< SA_*
  u64 restorer;
  u64 mask;
};
static_assert(sizeof(SigActionRecord) == 40);

/// CkptNote::PendingSignals: one per queued signal.
struct PendingSignalRecord {
  i32 pid;
  i32 tid;                  ///< 0 for the process-wide queue
  u32 signo;
  u32 pad0;
  u8 siginfo[128];          ///< as PTRACE_PEEKSIGINFO returns it
};
static_assert(sizeof(PendingSignalRecord) == 144);

/// CkptNote::Timers.
struct TimerRecord {
  i32 pid;
  u32 kind;                 ///< TimerKind
  i32 timer_id;             ///< POSIX timer id
  i32 clock_id;
  i32 sigev_notify;
  i32 sigev_signo;
  u64 sigev_value;
  i32 sigev_tid;
  u32 overrun;
  u64 interval_ns;
  u64 value_ns;             ///< time left until expiry; 0 = disarmed
};
static_assert(sizeof(TimerRecord) == 56);

enum class TimerKind : u32 {
  ItimerReal = 0,
  ItimerVirtual = 1,
  ItimerProf = 2,
  Posix = 3,
};

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

/// CkptNote::Rlimits.
struct RlimitRecord {
  i32 pid;
  u32 resource;
  u64 cur;
  u64 max;
};
static_assert(sizeof(RlimitRecord) == 24);

/// CkptNote::SeccompFilters: one per classic BPF filter of a thread in
/// SeccompMode::Filter. A thread's filters are numbered in the order they
/// were installed (position 0 is the oldest, installed first at restore).
struct SeccompFilterRecord {
  i32 pid;
  i32 tid;
  u32 position;             ///< 0 = oldest filter of the thread's chain
  u32 flags;                ///< SECCOMP_FILTER_FLAG_LOG if it was installed with it
  BlobRef program;          ///< struct sock_filter[]: 8 bytes per instruction
};
static_assert(sizeof(SeccompFilterRecord) == 32);

/// Largest classic BPF program the kernel accepts (BPF_MAXINSNS).
inline constexpr u32 kMaxSeccompInsns = 4096;
/// SECCOMP_FILTER_FLAG_LOG: the only filter flag the kernel reports back
/// (PTRACE_SECCOMP_GET_METADATA) and the only one an image may carry.
inline constexpr u32 kSeccompFilterFlagLog = 1u << 1;

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
  Prefix = 3,        ///< every byte before the integrity note
  SelfCheck = 4,     ///< this note up to this record
  ZeroBlock = 5,     ///< the shared zero block read by zero segments
};

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
