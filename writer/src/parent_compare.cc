// select_parent_pages (parent_compare.h).
#include "parent_compare.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <string>
#include <unistd.h>

#include "procfs.h"
#include "snapshot_plan.h"

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

namespace {

// The bytes of the instant, for the pages tracking does not decide: from
// `early` for a mapping snapshot mode read while frozen (the copy shares
// MAP_SHARED pages with the target, which runs on), otherwise read from
// `pid` (the frozen target or its copy) through /proc/PID/mem: a pread
// there does not pin, so it unshares none of a copy's copy-on-write pages
// (process_vm_readv would, DECISIONS 216), and it reads PROT_NONE pages too.
class InstantBytes {
 public:
  InstantBytes(pid_t pid, const PagesReadEarlier *early) : pid_(pid), early_(early) {}
  ~InstantBytes() {
    if (mem_ >= 0) close(mem_);
  }
  InstantBytes(const InstantBytes &) = delete;
  InstantBytes &operator=(const InstantBytes &) = delete;

  // [at, at+n) of mapping v, or nullptr where it cannot be read (then the
  // pages are stored, and the writer reads or refuses them).
  const u8 *read(const VmaPlan &v, u64 at, u64 n) {
    if (early_ && read_while_frozen(v)) return early_->find(at, n);
    // Made only when a page must be compared: a tracked increment reads
    // none, and 4 MiB made present is not free on this VM.
    if (!buf_) buf_.reset(new u8[kSlice]);
    if (mem_ < 0) mem_ = open_mem(pid_);
    if (mem_ < 0) return nullptr;
    return read_mem_at(mem_, at, buf_.get(), n) == n ? buf_.get() : nullptr;
  }

 private:
  pid_t pid_;
  const PagesReadEarlier *early_;
  int mem_ = -1;
  std::unique_ptr<u8[]> buf_;
};

// A piece PREV stores (Image) that tracking covers whole: its written
// ranges are stored, the rest becomes Parent, range by range (not a step
// per 4 KiB page: at 1 GiB that was 262,144 steps for 10 % written).
void select_tracked(const ResolvedPiece &p, const WrittenPages &written, std::vector<PageRun> &runs,
                    ParentSelection &sel) {
  u64 at = p.addr, end = p.addr + p.length;
  auto w = std::partition_point(written.written.begin(), written.written.end(),
                                [&](const AddressRange &r) { return r.end <= at; });
  for (; at < end; ++w) {
    u64 ws = w == written.written.end() ? end : std::clamp(w->start, at, end);
    u64 we = w == written.written.end() ? end : std::min(w->end, end);
    if (ws > at) {
      add_run(runs, at, ws - at, PageSource::Parent);
      sel.parent_bytes += ws - at;
    }
    if (we > ws) {
      add_run(runs, ws, we - ws, PageSource::Image);
      sel.written_bytes += we - ws;
    }
    at = std::max(ws, we);
    if (w == written.written.end()) break;
  }
  sel.tracked_bytes += p.length;
}

}  // namespace

Expected<ParentSelection> select_parent_pages(pid_t pid, std::vector<VmaPlan> &plan, const ProcessChain &parent,
                                              const WrittenPages *written_private, const PagesReadEarlier *early) {
  ParentSelection sel;
  InstantBytes instant(pid, early);
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
        const u8 *bytes = nullptr;
        if (!(written && written->covers(at, at + n))) bytes = instant.read(v, at, n);
        for (const ResolvedPiece &p : pieces) {
          // Not stored by PREV (Zero or File there): stored now.
          if (p.source != PageSource::Image) {
            add_run(runs, p.addr, p.length, PageSource::Image);
            continue;
          }
          if (written && written->covers(p.addr, p.addr + p.length)) {
            select_tracked(p, *written, runs, sel);
            continue;
          }
          for (u64 page = p.addr; page < p.addr + p.length; page += kPageSize) {
            bool same = false;
            if (written && written->covers(page, page + kPageSize)) {
              same = written->clean(page, page + kPageSize);
              sel.tracked_bytes += kPageSize;
              if (!same) sel.written_bytes += kPageSize;
            } else if (bytes) {
              same = std::memcmp(bytes + (page - at), p.bytes + (page - p.addr), kPageSize) == 0;
              sel.compared_bytes += kPageSize;
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
