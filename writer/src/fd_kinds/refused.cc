// Kinds restore does not bring back yet (issue 13): recognised here so
// that dump refuses them by name (libimg/src/fd_kinds.cc), before anything
// is written or killed. A kind that learns to come back moves to a file
// of its own.
#include "fd_kind.h"

namespace ckpt::writer {

namespace {

// Anonymous inodes print no file type in st_mode at all (mode 0600, S_IFMT
// bits zero), so the link text is the only clue; "inotify" has no
// brackets, as the kernel prints it.
bool anon_inode_named(const FdProbe &p, std::string_view name) {
  return is_anon_inode(p.link) && p.link.substr(11) == name;
}

}  // namespace

bool recognizes_block_device(const FdProbe &p) { return !is_anon_inode(p.link) && S_ISBLK(p.st.st_mode); }
bool recognizes_signalfd(const FdProbe &p) { return anon_inode_named(p, "[signalfd]"); }
bool recognizes_timerfd(const FdProbe &p) { return anon_inode_named(p, "[timerfd]"); }
bool recognizes_inotify(const FdProbe &p) { return anon_inode_named(p, "inotify"); }
// The kind of last resort (classify_fd tries it after every other): an
// anonymous inode of another name (pidfd, io_uring...) or an inode type
// none of the kinds above is.
bool recognizes_other(const FdProbe &) { return true; }

}  // namespace ckpt::writer
