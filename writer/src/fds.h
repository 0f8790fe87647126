// The file descriptor table of a process, read from outside: /proc/PID/fd,
// fdinfo, kcmp for shared open files, pidfd_getfd + tee for the bytes
// buffered in pipes (read without consuming them), and the contents of
// unlinked files.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

namespace ckpt::writer {

struct FdInfo {
  img::FdRecord record{};          ///< all fields except path/content/state refs
  std::string path;                ///< readlink of /proc/PID/fd/N, " (deleted)" removed
  std::vector<img::u8> content;    ///< an unlinked regular file's bytes
  std::vector<img::u8> state;      ///< the kind's own state (img::fd_state_bytes), or empty
};

struct PipeInfo {
  img::u32 pipe_id = 0;            ///< equals FdRecord::pipe_id of its ends
  img::u32 capacity = 0;           ///< F_GETPIPE_SZ
  img::u64 ino = 0;
  std::vector<img::u8> data;       ///< buffered bytes, oldest first
};

struct FdTable {
  std::vector<FdInfo> fds;         ///< ascending fd number
  std::vector<PipeInfo> pipes;     ///< one per distinct pipe/FIFO inode with an fd here
};

/// Largest unlinked file whose bytes are copied into the image.
inline constexpr img::u64 kMaxUnlinkedFileBytes = img::u64(256) << 20;

/// Reads up to `size` bytes from the start of the file open at fd into
/// out (fewer if it shrank meanwhile); `what` names it in errors.
img::Status read_file_bytes(int fd, img::u64 size, std::vector<img::u8> &out, const std::string &what);

/// Reads the fd table of pid. pidfd is a pidfd_open() of pid (for
/// pidfd_getfd). Fails with a clear message on an fd it cannot represent
/// (e.g. an unlinked file larger than kMaxUnlinkedFileBytes).
img::Expected<FdTable> read_fds(pid_t pid, int pidfd);

/// Keeps kFdTerminal only on fds that are the process's controlling
/// terminal (tty_nr from /proc/PID/stat) or /dev/tty, or a terminal on fd
/// 0-2 of a process holding no pty master: restore reconnects those to its
/// own terminal (decision 27). Any other terminal (the slave of a pty pair
/// the process made) loses the mark, and restore refuses it.
void mark_controlling_terminal(FdTable &table, int tty_nr);

/// mark_controlling_terminal, then the terminals' TtyStates completed
/// (terminals.cc): the controlling one (kTtyControlling; kTtyForeground
/// when tpgid, the terminal's foreground group, is pgrp), pty slaves
/// without their master, and the bytes queued in pairs the process holds
/// both ends of (read out and put back). pidfd: pidfd_open() of pid.
img::Status finish_terminals(pid_t pid, int pidfd, FdTable &table, int tty_nr, pid_t tpgid, pid_t pgrp);

/// One process's fd table among a tree's (join_split_pty_pairs).
struct TreeFdTable {
  pid_t pid;
  int pidfd;
  FdTable *table;
};

/// Pty pairs split over processes of the tree (a terminal emulator or
/// `script` holding the master, a child on the slave): the slaves are
/// no longer "without their master" nor the terminal the tree was run
/// from, and the pair's queued bytes are read through the master's process
/// and a slave's (decision 167). Once every process's table is read.
img::Status join_split_pty_pairs(const std::vector<TreeFdTable> &tree);

}  // namespace ckpt::writer
