// The fd kind registry, the reader's part: for every FdType what preflight
// checks of this machine (check_here_now) and how restore makes a new open
// file description of it. One file per kind (regular.cc, pipe.cc...);
// registry.cc is the table, which must have an entry for every FdType to
// build (img::covers_every_fd_type, libimg/fd_kinds.h). Which kinds restore
// refuses altogether is libimg's policy (img::unsupported_state), asked
// before any of this runs.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <unistd.h>

#include <ckpt/img/fd_kinds.h>
#include <ckpt/img/model.h>
#include <ckpt/reader/validate.h>

namespace ckpt::reader {

/// Pipes being recreated in one process: anonymous pipes by pipe id (both
/// ends, shared by every fd on them), and the FIFOs whose buffered bytes
/// are back already.
struct PipeTable {
  std::map<img::u32, std::pair<int, int>> ends;
  std::set<img::u32> refilled_fifos;
  /// AF_UNIX: the end of a socketpair made for a socket opened earlier,
  /// kept for its peer's record, by the peer's inode.
  std::map<img::u64, int> unix_ends;
  /// Pty pairs made so far, by the dumped pty number: (master, a slave
  /// kept open until every fd is placed).
  std::map<img::u32, std::pair<int, int>> pty_pairs;
};

/// What opening one fd may use: the image's view, the pipes made so far,
/// and the restoring terminal's fds 0..2 (or -1).
struct FdOpenContext {
  const img::CkptView &view;
  PipeTable &pipes;
  const int *terminal;
};

struct ReaderFdKind {
  img::FdType type;
  /// What fd record r needs from this machine now (its file still there
  /// and the same...); fails naming the fd and what is wrong.
  img::Status (*check_here)(const img::CkptView &view, const img::FdRecord &r, const HereNowOptions &options);
  /// A new open file description as r describes it (access mode, status
  /// flags, position), at any fd number, close-on-exec.
  img::Expected<int> (*open)(FdOpenContext &context, const img::FdRecord &r);
  /// Optional (nullptr: nothing): the rest of r's state once every fd of
  /// the process is at its number (epoll adds its targets by number); r's
  /// fd is at r.fd.
  img::Status (*after_placed)(const img::CkptView &view, const img::FdRecord &r) = nullptr;

  constexpr bool complete() const { return check_here != nullptr && open != nullptr; }
};

/// The reader's entry for fd record type `type`; nullptr for a number this
/// build does not know (unsupported_state refuses such an image first).
const ReaderFdKind *reader_fd_kind(img::u32 type);

// ---- Shared by the kinds' files ----------------------------------------

/// r's open flags as open() takes them again: without those that made
/// sense at creation only (O_CREAT, O_EXCL, O_TRUNC, O_NOCTTY) or are fd flags.
int reopen_flags(const img::FdRecord &r);
/// Gives a kernel object's new fd the record's O_NONBLOCK/O_ASYNC and
/// returns it; on failure closes it and names the kind.
img::Expected<int> with_status_flags(int fd, const img::FdRecord &r, const char *kind);
/// Opens r's path with its flags (no seek).
img::Expected<int> open_by_path(const img::CkptView &view, const img::FdRecord &r);
/// Writes all of data to fd; `what` names it in errors.
img::Status write_all(int fd, std::span<const img::u8> data, const char *what);
/// Fills a recreated unlinked file (fd, ours, read-write) with r's stored
/// bytes, then reopens it through /proc with r's access mode and status
/// flags and seeks to r's position; closes fd.
/// Closes the fd it holds at the end of its scope unless released: the
/// early error returns of a kind's open function.
struct Closer {
  int fd;
  ~Closer() {
    if (fd >= 0) close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

/// An fd for r, a pipe end, from `end` (ours, of the same pipe and
/// direction): a dup, or a new open file of the pipe where r's was one of
/// its own (opened through /proc), with r's status flags.
img::Expected<int> place_pipe_end(int end, const img::FdRecord &r);
/// Refills the recreated file `fd` from the image and returns the open
/// file r had on it; `fd` is closed. With `linked`, the file is still
/// linked at `path`: it is reopened by that name, then unlinked.
img::Expected<int> fill_and_reopen(const img::CkptView &view, const img::FdRecord &r, int fd, const std::string &path,
                                   bool linked = false);
/// The same refill on `fd` itself, kept as the fd (its status flags and
/// position set): for a file whose creation flags are part of its state
/// (an O_TMPFILE file: F_GETFL shows them, and only the creating fd has
/// them).
img::Expected<int> fill_in_place(const img::CkptView &view, const img::FdRecord &r, int fd, const std::string &path);
/// True when nothing is at `path` and the image stores the file that was
/// there: restore recreates it (stored_files.h).
bool gone_but_stored(const img::CkptView &view, const std::string &path, img::u64 ino);
/// Regular files and directories reopened by path: still there, the same
/// inode, not shorter (decision 24; --reopen-changed-files: decision 32).
img::Status check_reopened_file(const img::CkptView &view, const img::FdRecord &r, const HereNowOptions &options);
/// Nothing to check of this machine.
img::Status check_nothing(const img::CkptView &, const img::FdRecord &, const HereNowOptions &);

// ---- The kinds' functions (one file each) ----------------------------------

img::Expected<int> open_regular(FdOpenContext &, const img::FdRecord &);
img::Expected<int> open_directory(FdOpenContext &, const img::FdRecord &);
img::Expected<int> open_pipe_end(FdOpenContext &, const img::FdRecord &);
img::Status check_fifo(const img::CkptView &, const img::FdRecord &, const HereNowOptions &);
img::Expected<int> open_fifo(FdOpenContext &, const img::FdRecord &);
img::Status check_char_device(const img::CkptView &, const img::FdRecord &, const HereNowOptions &);
img::Expected<int> open_char_device(FdOpenContext &, const img::FdRecord &);
/// A pty master or slave of a pair the process held (TtyState), not the
/// terminal it was run from.
bool is_pty_end(const img::CkptView &view, const img::FdRecord &r);
/// A new pair's master, or a new open file of its slave (pty.cc).
img::Expected<int> open_pty_end(FdOpenContext &, const img::FdRecord &);
/// The dumped pty number of a pty end (is_pty_end), else nullopt.
std::optional<img::u32> pty_index(const img::CkptView &view, const img::FdRecord &r);
/// A pair made once for a tree whose processes share it (tree_create.cc):
/// (master, slave or -1), as `master` of master_view describes it, with
/// `slave` (of slave_view) open when given.
img::Expected<std::pair<int, int>> make_tree_pty_pair(const img::CkptView &master_view, const img::FdRecord &master,
                                                      const img::CkptView *slave_view, const img::FdRecord *slave);
/// A master locked at the dump is locked again once its slaves are open.
img::Status lock_pty_master(const img::CkptView &, const img::FdRecord &);
img::Expected<int> open_memfd(FdOpenContext &, const img::FdRecord &);
/// The seals of a memfd's record that open_memfd leaves to the restorer,
/// which adds them once the memory is mapped (0: none; memfd.cc).
img::u32 memfd_late_seals(const img::FdRecord &r);
/// The same of a memfd's F_GET_SEALS `seals` (0: none to leave).
img::u32 memfd_late_seals(img::u32 seals);
/// The seals of a shared memfd mapping's record (kVmaSeals) left to after
/// every mapping, as memfd_late_seals (0: none, or none recorded).
img::u32 mapped_memfd_late_seals(const img::VmaRecord &m);
/// In a tree: adds the late seals of process `pid`'s memfds (its fds of
/// view `v`, through pidfd_getfd, and the memfds it only maps, through
/// /proc/PID/map_files) once every process of the tree has mapped its
/// memory and before any runs (decision 204).
img::Status add_late_seals(pid_t pid, const img::CkptView &v);
img::Expected<int> open_eventfd(FdOpenContext &, const img::FdRecord &);
img::Expected<int> open_timerfd(FdOpenContext &, const img::FdRecord &);
img::Expected<int> open_signalfd(FdOpenContext &, const img::FdRecord &);
img::Status check_inotify(const img::CkptView &, const img::FdRecord &, const HereNowOptions &);
img::Expected<int> open_inotify(FdOpenContext &, const img::FdRecord &);
img::Status check_socket(const img::CkptView &, const img::FdRecord &, const HereNowOptions &);
img::Expected<int> open_socket(FdOpenContext &, const img::FdRecord &);
/// A connected AF_UNIX pair: the socket of record a (in view va) and its
/// peer b (in vb; nullptr when the peer was closed: that end is closed
/// after its bytes are written), each with its queued messages, options,
/// shutdown state and status flags. Returns (a's fd, b's fd or -1).
img::Expected<std::pair<int, int>> recreate_unix_pair(const img::CkptView &va, const img::FdRecord &a,
                                                      const img::CkptView *vb, const img::FdRecord *b);
/// TCP and UDP sockets (inet_socket.cc): open_socket's part for their
/// state; finish_socket's part ends an established connection's repair mode.
img::Expected<int> open_inet_socket(FdOpenContext &, const img::FdRecord &);
img::Status finish_inet_socket(const img::CkptView &, const img::FdRecord &);
img::Status finish_socket(const img::CkptView &, const img::FdRecord &);
img::Expected<int> open_epoll(FdOpenContext &, const img::FdRecord &);
img::Status add_epoll_targets(const img::CkptView &, const img::FdRecord &);
/// Kinds restore refuses (refused.cc): unsupported_state stops a restore
/// of them before this could run; reaching it is a one-line error.
img::Expected<int> open_refused(FdOpenContext &, const img::FdRecord &);

}  // namespace ckpt::reader
