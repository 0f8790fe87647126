// The fd kinds' own states (FdRecord::state, docs/FORMAT.md §9.7): a
// versioned FdStateHeader, then each kind's fields and variable data.
// Part of records.h.
#pragma once

#include <ckpt/img/records_refs.h>

namespace ckpt::img {

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

}  // namespace ckpt::img
