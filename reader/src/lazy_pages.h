// --lazy: the stored pages of private anonymous memory are not read in by
// the restorer. It maps each such VMA exactly as an eager restore does (so
// /proc/PID/maps is the same: no VMA split per stored range, MAP_GROWSDOWN
// kept) and registers it on a userfaultfd; a helper process forked from
// imgtool serves each missing page from the mapped image (UFFDIO_COPY, or
// UFFDIO_ZEROPAGE where the page was zero), copies the rest in the
// background and, once every stored page is in, hands the VMAs back to the
// kernel (UFFDIO_UNREGISTER) and exits. It follows the process through
// fork, mremap, madvise(DONTNEED) and munmap (non-cooperative events).
#pragma once

#include <sys/types.h>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

namespace ckpt::reader {

/// Whether VMA m is served by the lazy-pages helper (private anonymous
/// memory with stored pages); everything else is read in even with --lazy.
bool served_lazily(const img::CkptView &v, const img::VmaRecord &m);

/// In the restoring child: a userfaultfd for this mm, also sent to imgtool
/// through the socket `sock` (which is closed).
img::Expected<int> make_lazy_uffd(int sock);

/// imgtool's side: the channel the child's userfaultfd comes through, and
/// the helper process that serves it.
class LazyHelper {
 public:
  LazyHelper() = default;
  LazyHelper(const LazyHelper &) = delete;
  LazyHelper &operator=(const LazyHelper &) = delete;
  /// Kills the helper unless go() was called (the process never ran), then
  /// waits for it unless detached: it ends by itself once every page is in
  /// or the process is gone.
  ~LazyHelper();

  /// A socket pair; returns the child's end (pass it to make_lazy_uffd).
  img::Expected<int> open_channel();
  /// In the child: drops the parent's end.
  void close_parent_end();
  /// Receives the userfaultfd of process `pid` and forks the helper. It
  /// serves faults at once; its background copy waits for go(), since
  /// until the restorer has registered every VMA a copy there would fail,
  /// and then a while longer (DECISIONS 95). It ends when every stored
  /// page is in or `pid` (and every child it forked) is gone.
  img::Status start(const img::ImageReader &image, const img::CkptView &v, pid_t pid);
  /// The restorer reported success: the process runs. A helper already
  /// gone is not an error here (DECISIONS 255): it ends before go() only
  /// once the process has exited, or after a failure its guard answers by
  /// killing the process, which the wait for the process then reports.
  img::Status go();
  /// Returning while the process runs: leave the helper to it.
  void detach() { pid_ = guard_ = 0; }

 private:
  int sock_ = -1;      ///< parent's end of the channel
  int go_ = -1;        ///< our end of the helper's go socket
  pid_t pid_ = 0;
  pid_t guard_ = 0;     ///< the helper's guard (lazy_guard.h), also our child; -1: none
  bool running_ = false;  ///< go() was called: the process may need the helper
};

}  // namespace ckpt::reader
