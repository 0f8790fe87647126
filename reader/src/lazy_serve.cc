#include "lazy_serve.h"

#include "lazy_guard.h"
#include "lazy_pages.h"
#include "phase_times.h"

#include <ckpt/img/fault_point.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace ckpt::reader {

using namespace img;

// Background copies go in steps of this many bytes, so that a fault waits
// for at most one step.
static constexpr u64 kStep = 1u << 20;
// A fault is served with the stored pages of its aligned window of this
// many bytes (decision 224): the kernel's own fault-around size for file
// pages (fault_around_bytes, 64 KiB).
static constexpr u64 kFaultAround = 64u << 10;
// The background copy starts this long after the process runs: a program
// that is done by then (a warm start that answers and exits) never pays for
// copying, and then freeing, memory it does not touch; faults are served
// from the first instant (DECISIONS 95). CKPT_LAZY_BACKGROUND_DELAY_MS
// overrides it (tests).
static constexpr long kBackgroundDelayMs = 100;

static long background_delay_ms() {
  const char *v = std::getenv("CKPT_LAZY_BACKGROUND_DELAY_MS");
  if (!v || !*v) return kBackgroundDelayMs;
  char *end;
  long ms = std::strtol(v, &end, 10);
  return *end || ms < 0 ? kBackgroundDelayMs : ms;
}

static long now_ms() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return long(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}


namespace {

enum class Step { Done, Retry, Gone };

// What the helper did, for CKPT_TRACE_TIMES.
struct HelperCounts {
  u64 faults_copied = 0, faults_zeroed = 0, faults_raced = 0;
  u64 fault_bytes = 0;  ///< copied by faults, their windows included
  u64 background_copies = 0, background_bytes = 0;
} g_counts;

// The stored bytes of the restored process, for the restore-lazy-midway
// fault point (docs/design/fault-points.md): the helper dies once half of
// them were served or copied, the program mid-way through its memory.
u64 g_stored_bytes = 0;
void midway_fault_point() {
  if ((g_counts.fault_bytes + g_counts.background_bytes) * 2 < g_stored_bytes) return;
  if (!fault_point("restore-lazy-midway")) _exit(1);  // the :eio form: the helper gives up
}

// One mm being served: the restored process, or a child it forked while
// pages were still missing.
class Target {
 public:
  Target(int uffd, std::vector<Stored> stored, std::vector<std::pair<u64, u64>> vmas, bool copy_in_background)
      : uffd_(uffd), stored_(std::move(stored)), vmas_(std::move(vmas)), copy_in_background_(copy_in_background) {}
  Target(Target &&o) noexcept
      : uffd_(std::exchange(o.uffd_, -1)), stored_(std::move(o.stored_)), vmas_(std::move(o.vmas_)),
        copy_in_background_(o.copy_in_background_) {}
  Target &operator=(Target &&o) noexcept {
    std::swap(uffd_, o.uffd_);
    stored_ = std::move(o.stored_);
    vmas_ = std::move(o.vmas_);
    copy_in_background_ = o.copy_in_background_;
    return *this;
  }
  ~Target() {
    if (uffd_ >= 0) close(uffd_);
  }

  int fd() const { return uffd_; }
  /// The restored process itself (not a child it forked).
  bool is_first() const { return first_; }
  void set_first() { first_ = true; }
  bool finished() const { return stored_.empty(); }
  const std::vector<Stored> &stored() const { return stored_; }
  bool copies_in_background() const { return copy_in_background_; }
  bool has_background_work() const { return copy_in_background_ && !stored_.empty(); }
  Target fork_child(int child_uffd) const { return Target(child_uffd, stored_, vmas_, copy_in_background_); }

  // UFFDIO_COPY of c, its first page alone where the range crosses a VMA
  // end (c.len is then one page). Kernel quirk: the kernel refuses such a
  // range with ENOENT and nothing copied (mm/userfaultfd.c), and the
  // program may have split a stored range since the restore (an mprotect
  // of part of it sends no userfaultfd event); a page is always inside
  // its VMA.
  int copy_in(uffdio_copy &c) {
    int r = ioctl(uffd_, UFFDIO_COPY, &c);
    if (r == 0 || errno != ENOENT || c.len <= kPageSize) return r;
    c.len = kPageSize;
    c.copy = 0;
    return ioctl(uffd_, UFFDIO_COPY, &c);
  }

  Step fault(u64 page) {
    const Stored *s = find(page);
    int r;
    if (s) {
      midway_fault_point();
      // Fault-around (decision 224): the stored pages of the aligned
      // window around the page come in with it, the page and those after
      // it first (the copy that wakes the program), then those before it.
      // A warm start touches its memory in clusters (the JVM: ~440 pages
      // in ~170 runs): each round trip to this helper costs two context
      // switches and, under load, a wait for a CPU; a page copied ahead
      // costs a 4 KiB copy. Pages copied are no longer stored (forget), so
      // the background copy does not meet them one EEXIST at a time.
      u64 window = page & ~(kFaultAround - 1);
      u64 lo = std::max(s->start, window), hi = std::min(s->start + s->len, window + kFaultAround);
      const u8 *at_lo = s->bytes + (lo - s->start);
      uffdio_copy c{};
      c.dst = page;
      c.src = reinterpret_cast<u64>(at_lo + (page - lo));
      c.len = hi - page;
      r = copy_in(c);
      // A partial copy (a later page of the window was in already) fails
      // with EAGAIN and c.copy bytes in, the faulting page among them.
      u64 after = c.copy > 0 ? u64(c.copy) : 0;
      if (after >= kPageSize) {
        u64 before = 0;
        if (lo < page) {
          uffdio_copy b{};
          b.dst = lo;
          b.src = reinterpret_cast<u64>(at_lo);
          b.len = page - lo;
          b.mode = UFFDIO_COPY_MODE_DONTWAKE;  // nobody waits for them
          ioctl(uffd_, UFFDIO_COPY, &b);     // best effort: a page left out faults later
          before = b.copy > 0 ? u64(b.copy) : 0;
        }
        g_counts.faults_copied++;
        g_counts.fault_bytes += after + before;
        forget(page, page + after);  // s is invalid from here
        if (before) forget(lo, lo + before);
        return Step::Done;
      }
    } else {
      // Zero fault-around (DECISIONS 244): the pages of the aligned
      // window that nothing is stored for come in as zero pages with the
      // faulting one. A JVM thread probes its stack downward a page at a
      // time (stack banging): ~20 round trips here, one per page, where
      // a window takes one or two. A zero page costs a page-table entry
      // only; a write to it later is the kernel's own copy-on-write of the
      // zero page, as for any untouched anonymous page, not a fault here.
      u64 window = page & ~(kFaultAround - 1);
      u64 lo = window, hi = window + kFaultAround;
      unstored_gap(page, lo, hi);
      uffdio_zeropage z{};
      z.range = {page, hi - page};
      r = zero_in(z);
      // Partial (a later page was in already): EAGAIN with the bytes done.
      u64 after = z.zeropage > 0 ? u64(z.zeropage) : 0;
      if (r == 0 || after >= kPageSize) {
        if (lo < page) {
          uffdio_zeropage b{};
          b.range = {lo, page - lo};
          b.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE;  // nobody waits for them
          ioctl(uffd_, UFFDIO_ZEROPAGE, &b);       // best effort: a page left out faults later
        }
        g_counts.faults_zeroed++;
        return Step::Done;
      }
    }
    if (errno == EAGAIN) return Step::Retry;  // an event is pending: read it first
    if (errno == EEXIST) {
      g_counts.faults_raced++;
      // Already in (a background copy won): wake whoever waits for it.
      uffdio_range range{page, kPageSize};
      ioctl(uffd_, UFFDIO_WAKE, &range);
      return Step::Done;
    }
    return Step::Gone;
  }

  // UFFDIO_ZEROPAGE of z, its first page alone where the range crosses a
  // VMA end: the kernel quirk of copy_in.
  int zero_in(uffdio_zeropage &z) {
    int r = ioctl(uffd_, UFFDIO_ZEROPAGE, &z);
    if (r == 0 || errno != ENOENT || z.range.len <= kPageSize) return r;
    z.range.len = kPageSize;
    z.zeropage = 0;
    return ioctl(uffd_, UFFDIO_ZEROPAGE, &z);
  }

  // Narrows [lo, hi), which holds `page` (stored nowhere), to the pages
  // around it that nothing is stored for, inside the registered VMA that
  // holds it (the program may have split it since: zero_in's fallback).
  void unstored_gap(u64 page, u64 &lo, u64 &hi) const {
    auto next = std::upper_bound(stored_.begin(), stored_.end(), page,
                                 [](u64 a, const Stored &s) { return a < s.start; });
    if (next != stored_.end()) hi = std::min(hi, next->start);
    if (next != stored_.begin()) lo = std::max(lo, std::prev(next)->start + std::prev(next)->len);
    for (auto [start, end] : vmas_)
      if (page >= start && page < end) {
        lo = std::max(lo, start);
        hi = std::min(hi, end);
        return;
      }
    lo = page;  // not a VMA we registered (moved since?): the page alone
    hi = page + kPageSize;
  }

  // Copies the next step of stored bytes in.
  Step background() {
    Stored &s = stored_.front();
    uffdio_copy c{};
    c.dst = s.start;
    c.src = reinterpret_cast<u64>(s.bytes);
    c.len = std::min(kStep, s.len);
    midway_fault_point();
    g_counts.background_copies++;
    int r = copy_in(c);
    u64 len = c.len, advance = len;  // one page where the step crossed a VMA end
    if (r != 0) {
      // The kernel copies page by page and stops at the first page that is
      // there already (a fault was served first). With some pages copied
      // the ioctl fails with EAGAIN and c.copy holds their bytes
      // (fs/userfaultfd.c, userfaultfd_copy: "a partial copy is -EAGAIN");
      // with none, EEXIST. The copied pages are done either way: retrying
      // the step from its start would meet each of them again, one EEXIST
      // per page.
      int e = errno;
      u64 copied = c.copy > 0 ? u64(c.copy) : 0;
      if (e == EEXIST) {
        advance = std::min(len, copied + kPageSize);
        g_counts.background_bytes += copied;
      } else if (e == EAGAIN && copied > 0) {
        advance = copied;
        g_counts.background_bytes += copied;
      } else if (e == EAGAIN) {
        return Step::Retry;  // an event is pending: read it first
      } else {
        return Step::Gone;
      }
    } else {
      g_counts.background_bytes += len;
    }
    s.start += advance;
    s.bytes += advance;
    s.len -= advance;
    if (s.len == 0) stored_.erase(stored_.begin());
    return Step::Done;
  }

  // The pages in [start, end) are gone (munmap) or dropped (MADV_DONTNEED:
  // they read as zeros now): their stored bytes must never come back.
  // Only the entries that overlap are touched (stored_ is sorted and
  // disjoint): every served fault forgets its window, and rebuilding the
  // whole list each time was ~1% of a JVM warm start's helper samples.
  void forget(u64 start, u64 end) {
    if (start >= end) return;
    // The first entry that ends after start.
    auto first = std::upper_bound(stored_.begin(), stored_.end(), start,
                                  [](u64 a, const Stored &s) { return a < s.start + s.len; });
    auto last = first;  // one past the last entry that begins before end
    while (last != stored_.end() && last->start < end) ++last;
    if (first == last) return;
    Stored head = *first, tail = *std::prev(last);
    std::vector<Stored> pieces;
    if (head.start < start) pieces.push_back({head.start, start - head.start, head.bytes});
    u64 tail_end = tail.start + tail.len;
    if (tail_end > end) pieces.push_back({end, tail_end - end, tail.bytes + (end - tail.start)});
    auto at = stored_.erase(first, last);
    stored_.insert(at, pieces.begin(), pieces.end());
  }

  // mremap moved [from, from+len) to `to`.
  void moved(u64 from, u64 to, u64 len) {
    std::vector<Stored> inside;
    for (const Stored &s : stored_) {
      u64 lo = std::max(s.start, from), hi = std::min(s.start + s.len, from + len);
      if (lo < hi) inside.push_back({lo - from + to, hi - lo, s.bytes + (lo - s.start)});
    }
    forget(from, from + len);
    forget(to, to + len);
    stored_.insert(stored_.end(), inside.begin(), inside.end());
    std::sort(stored_.begin(), stored_.end(), [](const Stored &a, const Stored &b) { return a.start < b.start; });
    for (auto &[s, e] : vmas_)
      if (s >= from && e <= from + len) {
        s = s - from + to;
        e = e - from + to;
      }
  }

  // Every stored page is in; what is still missing was zero, which the
  // kernel's own anonymous faults give: hand the VMAs back (they merge
  // again as if never registered).
  void release() {
    for (auto [start, end] : vmas_) {
      uffdio_range range{start, end - start};
      ioctl(uffd_, UFFDIO_UNREGISTER, &range);
    }
  }

 private:
  const Stored *find(u64 page) const {
    auto it = std::upper_bound(stored_.begin(), stored_.end(), page,
                               [](u64 a, const Stored &s) { return a < s.start; });
    if (it == stored_.begin()) return nullptr;
    --it;
    return page < it->start + it->len ? &*it : nullptr;
  }

  int uffd_;
  std::vector<Stored> stored_;  // ascending, disjoint, page-aligned
  std::vector<std::pair<u64, u64>> vmas_;
  bool copy_in_background_;
  bool first_ = false;
};

// Reads and handles every pending message of target t. False when its mm
// is gone.
bool drain_events(std::vector<Target> &targets, size_t t, LazyGuard &guard) {
  for (;;) {
    uffd_msg msg;
    ssize_t n = read(targets[t].fd(), &msg, sizeof msg);
    if (n < 0 && errno == EAGAIN) return true;
    if (n < 0 && errno == EINTR) continue;
    if (n != sizeof msg) return false;
    switch (msg.event) {
      case UFFD_EVENT_PAGEFAULT: {
        u64 page = msg.arg.pagefault.address & ~(kPageSize - 1);
        Step s;
        while ((s = targets[t].fault(page)) == Step::Retry) {
          // A non-cooperative event is queued behind this fault: take it
          // first (the kernel refuses copies until it is read).
          if (!drain_events(targets, t, guard)) return false;
        }
        if (s == Step::Gone) return false;
        break;
      }
      case UFFD_EVENT_FORK:
        guard.hold(static_cast<int>(msg.arg.fork.ufd));
        targets.push_back(targets[t].fork_child(static_cast<int>(msg.arg.fork.ufd)));
        break;
      case UFFD_EVENT_REMAP:
        targets[t].moved(msg.arg.remap.from, msg.arg.remap.to, msg.arg.remap.len);
        break;
      case UFFD_EVENT_REMOVE:
      case UFFD_EVENT_UNMAP:
        targets[t].forget(msg.arg.remove.start, msg.arg.remove.end);
        break;
      default:
        break;
    }
  }
}

// The helper's loop: serve faults first, copy in the background when idle.
// The background copy waits for a byte on `go`: until the restorer has
// registered every VMA a copy there would fail (ENOENT). EOF on `go`
// without it means the restore failed.
// `exited` (a pidfd, or -1) becomes readable when the restored process is
// gone: with the background copy not yet begun, nothing else tells us
// (its mm's teardown sends the userfaultfd no event), and imgtool waits
// for us in the foreground.
// True when every target is done (all its pages in, or its mm gone); false
// when the helper gave up (the restore failed, poll failed).
bool serve(std::vector<Target> &targets, int go, int exited, LazyGuard &guard) {
  bool started = false;
  long copy_from = 0;  // CLOCK_MONOTONIC ms when the background copy may begin
  while (!targets.empty()) {
    // A target with nothing left to copy (all copied, or all of it
    // unmapped since) is done: hand its VMAs back and let it go.
    for (size_t i = targets.size(); started && i-- > 0;)
      if (targets[i].copies_in_background() && targets[i].finished()) {
        targets[i].release();
        targets.erase(targets.begin() + static_cast<long>(i));
      }
    if (targets.empty()) break;
    std::vector<pollfd> fds;
    bool background = false;
    for (const Target &t : targets) {
      fds.push_back({t.fd(), POLLIN, 0});
      background = background || t.has_background_work();
    }
    background = background && started;
    size_t n_targets = fds.size();
    if (exited >= 0) fds.push_back({exited, POLLIN, 0});
    if (!started) fds.push_back({go, POLLIN, 0});
    long wait_ms = background ? std::max(0L, copy_from - now_ms()) : -1;
    int r = poll(fds.data(), fds.size(), static_cast<int>(std::min(wait_ms, 60000L)));
    if (r < 0 && errno != EINTR) return false;
    if (!started && r > 0 && fds.back().revents) {
      char byte;
      if (read(go, &byte, 1) != 1) return false;
      trace_phase("helper: go (the process runs)");
      started = true;
      copy_from = now_ms() + background_delay_ms();
      close(go);
      fds.pop_back();
      r--;
    } else if (!started) {
      fds.pop_back();
    }
    std::vector<bool> gone(targets.size(), false);
    if (exited >= 0 && fds.back().revents) {
      // The process this helper was started for has exited; the children
      // it forked (later targets) may still need their pages.
      r--;
      close(exited);
      exited = -1;
      gone[0] = targets[0].is_first();
    }
    fds.resize(n_targets);
    for (size_t i = 0; r > 0 && i < fds.size(); i++)
      if (fds[i].revents & (POLLERR | POLLHUP))
        gone[i] = true;
      else if ((fds[i].revents & POLLIN) && !drain_events(targets, i, guard))
        gone[i] = true;
    if (r == 0 && started && now_ms() >= copy_from)
      for (size_t i = 0; i < fds.size(); i++)
        if (targets[i].has_background_work()) {
          Step s = targets[i].background();
          if (s == Step::Gone) gone[i] = true;
          if (s == Step::Retry && !drain_events(targets, i, guard)) gone[i] = true;
          break;  // one step, then look for faults again
        }
    for (size_t i = gone.size(); i-- > 0;)
      if (gone[i]) targets.erase(targets.begin() + static_cast<long>(i));
  }
  return true;
}

}  // namespace

void serve_lazy_pages(int uffd, std::vector<Stored> stored, std::vector<std::pair<u64, u64>> vmas, int go, int exited,
                      int guard_sock) {
  // Tests hold the background copy back to check that faults alone
  // bring every page in (CKPT_LAZY_NO_BACKGROUND=1).
  const char *hold = std::getenv("CKPT_LAZY_NO_BACKGROUND");
  std::vector<Target> targets;
  targets.emplace_back(uffd, std::move(stored), std::move(vmas), !(hold && *hold == '1'));
  targets.back().set_first();
  for (const Stored &st : targets.back().stored()) g_stored_bytes += st.len;
  // The guard (lazy_guard.h): should this helper die before every page is
  // in, the restored process is killed rather than run on reading zeros.
  LazyGuard guard(guard_sock);
  if (guard_sock < 0) trace_phase("helper: no guard (fork failed): serving unguarded");
  if (serve(targets, go, exited, guard)) guard.finished();
  trace_phasef("helper: done; faults served %llu copied, %llu zero, %llu raced; %llu background copies, %llu KiB; "
               "%llu KiB by faults",
               (unsigned long long)g_counts.faults_copied, (unsigned long long)g_counts.faults_zeroed,
               (unsigned long long)g_counts.faults_raced, (unsigned long long)g_counts.background_copies,
               (unsigned long long)(g_counts.background_bytes >> 10), (unsigned long long)(g_counts.fault_bytes >> 10));
}

}  // namespace ckpt::reader
