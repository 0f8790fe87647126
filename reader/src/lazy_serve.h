// The lazy-pages helper process's work (lazy_pages.h): serving the faults
// of the restored process's mm, and of every child it forks while pages are
// missing, from the mapped image, and copying the rest in the background.
#pragma once

#include <sys/types.h>

#include <utility>
#include <vector>

#include <ckpt/img/format.h>

namespace ckpt::reader {

/// Stored bytes still to be put into one mm, by address.
struct Stored {
  img::u64 start, len;
  const img::u8 *bytes;
};

/// In the forked helper: serves userfaultfd `uffd` of process `pid` (its
/// lazily served `vmas`, `stored` sorted by address) until every page is in
/// or every mm is gone. The background copy waits for a byte on `go`;
/// `exited` (a pidfd, or -1) tells of the process's end; `guard` is the
/// socket to the helper's guard (lazy_guard.h), or -1.
void serve_lazy_pages(int uffd, std::vector<Stored> stored, std::vector<std::pair<img::u64, img::u64>> vmas, int go,
                      int exited, int guard);

}  // namespace ckpt::reader
