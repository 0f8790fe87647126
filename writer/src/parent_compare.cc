// select_parent_pages (parent_compare.h).
#include "parent_compare.h"

#include <algorithm>
#include <cstring>
#include <sys/uio.h>

namespace ckpt::writer {

using namespace img;

// Compared in slices: one read of the target and one resolution through
// the chain per slice.
static constexpr u64 kSlice = 4ull << 20;

// Private anonymous and file memory, and shared anonymous memory
// (MAP_SHARED|MAP_ANONYMOUS, which maps show as "/dev/zero (deleted)": its
// bytes are read here while the whole tree is frozen, as its stored copy
// is). Private memory of a deleted file, shared memory of any file, SysV
// shm and hugetlb stay whole.
static bool candidate(const VmaPlan &v) {
  return private_base_page_memory(v) ||
         (v.kind == VmaKind::SharedAnon && (v.page_size == 0 || v.page_size == kPageSize));
}

// Dirty tracking sees the writes of this process only: another process of
// the tree (or outside it) may write shared memory behind its back, so
// shared pages are always compared, never taken from the tracker.
static const WrittenPages *tracking_for(const VmaPlan &v, const WrittenPages *written) {
  return (v.flags & kVmaShared) ? nullptr : written;
}

static void add_run(std::vector<PageRun> &runs, u64 start, u64 len, PageSource src) {
  if (!runs.empty() && runs.back().source == src && runs.back().start + runs.back().length == start)
    runs.back().length += len;
  else
    runs.push_back({start, len, src});
}

const ChainLinkImage *matching_core(const Chain &parent, const ProcessCapture &pc, bool root) {
  const ChainLinkImage *core = core_of(*parent[0], pc.pid);
  if (!core || root || core->view.tasks.records.empty()) return core;
  const TaskRecord &t = core->view.tasks.records[0];
  static const u8 unknown[16] = {};
  // Zeros: a writer before format 1.6, which did not record them.
  if (t.start_time == 0 || std::memcmp(t.boot_id, unknown, sizeof unknown) == 0) return core;
  if (t.start_time != pc.stat.start_time || std::memcmp(t.boot_id, pc.boot_id, sizeof t.boot_id) != 0) return nullptr;
  return core;
}

Expected<ParentSelection> select_parent_pages(pid_t pid, std::vector<VmaPlan> &plan, const ProcessChain &parent,
                                              const WrittenPages *written_private) {
  ParentSelection sel;
  std::vector<u8> buf(kSlice);
  std::vector<ResolvedPiece> pieces;
  for (VmaPlan &v : plan) {
    if (!candidate(v)) continue;
    const WrittenPages *written = tracking_for(v, written_private);
    std::vector<PageRun> runs;
    for (const PageRun &r : v.runs) {
      if (r.source != PageSource::Image) {
        add_run(runs, r.start, r.length, r.source);
        continue;
      }
      for (u64 at = r.start; at < r.start + r.length; at += kSlice) {
        u64 n = std::min(kSlice, r.start + r.length - at);
        pieces.clear();
        // Not in the parent at all (a mapping made since): stored as planned.
        if (!resolve_pages(parent, 0, at, n, pieces)) {
          add_run(runs, at, n, PageSource::Image);
          continue;
        }
        // Only a slice tracking does not wholly cover is read.
        bool read_ok = false, read = !(written && written->covers(at, at + n));
        if (read) {
          iovec local{buf.data(), n}, remote{reinterpret_cast<void *>(at), n};
          // A page process_vm_readv cannot read (PROT_NONE) is left to the
          // writer, which reads it through /proc/PID/mem.
          read_ok = process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(n);
        }
        for (const ResolvedPiece &p : pieces) {
          for (u64 page = p.addr; page < p.addr + p.length; page += kPageSize) {
            bool same = false;
            if (p.source == PageSource::Image) {
              if (written && written->covers(page, page + kPageSize)) {
                same = written->clean(page, page + kPageSize);
                sel.tracked_bytes += kPageSize;
                if (!same) sel.written_bytes += kPageSize;
              } else if (read_ok) {
                same = std::memcmp(buf.data() + (page - at), p.bytes + (page - p.addr), kPageSize) == 0;
                sel.compared_bytes += kPageSize;
              }
            }
            if (same) sel.parent_bytes += kPageSize;
            add_run(runs, page, kPageSize, same ? PageSource::Parent : PageSource::Image);
          }
        }
      }
    }
    v.runs = std::move(runs);
  }
  return sel;
}

}  // namespace ckpt::writer
