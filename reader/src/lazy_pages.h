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

/// In imgtool: receives the child's userfaultfd through `sock` (closed)
/// and forks the helper that serves it. The helper serves faults at once
/// and starts its background copy when a byte arrives on the pipe `go`
/// (the read end; the caller writes it once the restorer reported success,
/// or closes its end on failure). Returns the helper's pid, or 0 when the
/// child sent none (it failed first; its status says why).
img::Expected<pid_t> start_lazy_helper(int sock, int go, const img::ImageReader &image, const img::CkptView &v);

}  // namespace ckpt::reader
