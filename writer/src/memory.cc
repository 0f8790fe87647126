#include "memory.h"

#include <ckpt/img/assert.h>
#include <ckpt/img/build_id.h>
#include <ckpt/img/segment_plan.h>

#include "excluded_pages.h"
#include "pagemap_scan.h"
#include "unsupported_memory.h"

#include <algorithm>
#include <optional>
#include <cerrno>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <map>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

namespace ckpt::writer {

using namespace img;

// pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
static constexpr u64 kPmPresent = 1ull << 63;
static constexpr u64 kPmSwapped = 1ull << 62;
static constexpr u64 kPmFileOrShared = 1ull << 61;
// A guard page (MADV_GUARD_INSTALL, 6.14+ shows it): a page table marker
// with no contents, which pagemap also reports as swapped; reading it
// fails (EIO). Restore installs it again (CkptNote::GuardRanges).
static constexpr u64 kPmGuardRegion = 1ull << 58;
// Kernel quirk: the uffd-wp marker the dirty tracker's write-protection
// leaves on an empty entry (dirty_tracking.h; always in file mappings,
// with UFFD_FEATURE_WP_UNPOPULATED in anonymous ones) reads in pagemap
// as a swapped page with PM_UFFD_WP. In a mapping with nothing swapped
// out (smaps "Swap: 0") it is such a marker: no contents.
static constexpr u64 kPmUffdWp = 1ull << 57;
static constexpr u64 kPmPfnMask = (1ull << 55) - 1;

// The PFN of the kernel's shared zero page: a page read but never written
// maps it, and its bytes need not be stored.
static u64 zero_page_pfn() {
  static u64 pfn = [] {
    void *p = mmap(nullptr, kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return u64(0);
    volatile char c = *static_cast<volatile char *>(p);
    (void)c;
    u64 entry = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      if (pread(fd, &entry, 8, (reinterpret_cast<u64>(p) / kPageSize) * 8) != 8) entry = 0;
      close(fd);
    }
    munmap(p, kPageSize);
    return (entry & kPmPresent) ? (entry & kPmPfnMask) : u64(0);
  }();
  return pfn;
}

static VmaKind kind_of(const MapEntry &m) {
  const std::string &p = m.path;
  if (p == "[heap]") return VmaKind::Heap;
  if (p == "[stack]") return VmaKind::Stack;
  if (p == "[vdso]") return VmaKind::Vdso;
  if (p == "[vvar]") return VmaKind::Vvar;
  if (p == "[vvar_vclock]") return VmaKind::VvarVclock;
  if (p == "[vsyscall]") return VmaKind::Vsyscall;
  if (p.rfind("/SYSV", 0) == 0) return VmaKind::SysvShm;
  // MAP_HUGETLB anonymous memory is a file on the kernel's internal
  // hugetlbfs mount, shown as deleted (hugetlb_file_setup).
  if (p == "/anon_hugepage (deleted)" && m.has_flag("ht")) return VmaKind::Hugetlb;
  if (p.empty() || p[0] == '[') return m.shared ? VmaKind::SharedAnon : VmaKind::Anon;
  if (p.rfind("/dev/zero", 0) == 0 && m.shared) return VmaKind::SharedAnon;
  return VmaKind::File;
}

static void add_run(std::vector<PageRun> &runs, u64 start, u64 len, PageSource src) {
  if (!runs.empty() && runs.back().source == src && runs.back().start + runs.back().length == start)
    runs.back().length += len;
  else
    runs.push_back({start, len, src});
}

namespace {

// Pages of a mapping planned one step per 4 KiB page from pagemap entries.
class PagemapPages {
 public:
  PagemapPages(pid_t pid, int fd) : pid_(pid), fd_(fd), zero_pfn_(zero_page_pfn()) {}
  int fd() const { return fd_; }

  // Plans [from, to) of mapping m (v's runs and frames, appended).
  Status plan(const MapEntry &m, VmaPlan &v, u64 from, u64 to, bool file, bool elf_head) {
    u64 pages = (to - from) / kPageSize;
    entries_.resize(std::min<u64>(pages, 1 << 18));
    for (u64 done = 0; done < pages;) {
      u64 n = std::min<u64>(pages - done, entries_.size());
      ssize_t got = pread(fd_, entries_.data(), n * 8, ((from / kPageSize) + done) * 8);
      if (got != static_cast<ssize_t>(n * 8))
        return make_error("cannot read /proc/%d/pagemap at 0x%llx: %s", pid_,
                          (unsigned long long)(from + done * kPageSize), got < 0 ? strerror(errno) : "short read");
      for (u64 i = 0; i < n; i++) {
        u64 e = entries_[i];
        u64 addr = from + (done + i) * kPageSize;
        bool present = e & kPmPresent, swapped = e & kPmSwapped;
        bool data;
        if (file)
          // In a private file mapping, anonymous (COW'd) pages are the
          // changed ones; the rest is still the file's.
          data = swapped || (present && !(e & kPmFileOrShared));
        else
          data = swapped || (present && !(zero_pfn_ && (e & kPmPfnMask) == zero_pfn_));
        if (e & kPmGuardRegion) data = false;
        if (swapped && !present && (e & kPmUffdWp) && m.swap_kb == 0) data = false;
        if (elf_head && addr == m.start) data = true;
        // The page's frame, for memory a forked tree still shares
        // (cow_sharing.h): a private page mapped by this process alone or
        // copy-on-write with others; never a page-cache page of a file
        // (PM_FILE), and PFN 0 means "not shown" (no CAP_SYS_ADMIN).
        // Huge pages show each 4 KiB part's own frame. Hugetlb memory is
        // left out (filled by its own rules at restore).
        u64 pfn = e & kPmPfnMask;
        if (data && present && !(e & kPmFileOrShared) && pfn && v.kind != VmaKind::Hugetlb) {
          if (!v.frames.empty() && v.frames.back().start + v.frames.back().pages * kPageSize == addr &&
              v.frames.back().pfn + v.frames.back().pages == pfn)
            v.frames.back().pages++;
          else
            v.frames.push_back({addr, pfn, 1});
        }
        add_run(v.runs, addr, kPageSize, data ? PageSource::Image : (file ? PageSource::File : PageSource::Zero));
      }
      done += n;
    }
    return {};
  }

 private:
  pid_t pid_;
  int fd_;
  u64 zero_pfn_;
  std::vector<u64> entries_;
};

// [from, to) of a mapping dirty tracking covers, planned from PAGEMAP_SCAN's
// runs of pages (one call, no step per 4 KiB page) instead of pagemap's
// entries: the same decision per page (data: swapped, or present and
// neither the zero page nor, in a file mapping, a page-cache page; a guard
// page is none). Only the written pages, which are what an increment
// stores, are read per page from pagemap, for their frames (cow_sharing.h);
// a page not written since PREV is Parent or Zero once selection runs, and
// its frame is never asked for. False: not planned (a swap entry, which
// only pagemap's per-page bits and smaps' Swap tell apart from a marker; or
// a kernel without PAGE_IS_GUARD).
// A mapping whose every page is a present anonymous page (smaps' Anonymous
// equals its size: counted by the copy, which never runs, or by the target
// inside the window; confirm_smaps keeps a sum over merged neighbours
// below the size) is not scanned at all.
Expected<bool> plan_tracked_piece(PagemapPages &pages, const MapEntry &m, VmaPlan &v, u64 from, u64 to, bool file,
                                  const std::vector<AddressRange> &written) {
  std::vector<PageRegion> regions;
  if (m.anonymous_kb * 1024 == m.end - m.start) {
    regions.push_back({from, to, kPageIsPresent});
  } else {
    // PAGE_IS_FILE costs a page lookup per page (vm_normal_page): asked
    // only where it decides something.
    u64 returned = kPageIsPresent | kPageIsSwapped | kPageIsPfnZero | kPageIsGuard | (file ? kPageIsFile : 0);
    int err = pagemap_scan_walk_masks(pages.fd(), from, to, 0, 0, kPageIsPresent | kPageIsSwapped, returned,
                                      [&](const PageRegion &r) { regions.push_back(r); });
    // Kernel quirk: PAGE_IS_GUARD is 6.14's, and an older kernel (tracking
    // works from 6.7) refuses a category bit it does not know with EINVAL
    // before it walks anything (fs/proc/task_mmu.c, pagemap_scan_get_args).
    // The piece is then planned per page, as before this scan existed.
    if (err == EINVAL && regions.empty()) return false;
    if (err)
      return make_error("PAGEMAP_SCAN of 0x%llx-0x%llx: %s", (unsigned long long)from, (unsigned long long)to,
                        strerror(err));
  }
  for (const PageRegion &r : regions)
    if ((r.categories & kPageIsSwapped) && !(r.categories & kPageIsGuard)) return false;
  PageSource none = file ? PageSource::File : PageSource::Zero;
  u64 at = from;
  auto w = std::partition_point(written.begin(), written.end(), [&](const AddressRange &x) { return x.end <= from; });
  for (const PageRegion &r : regions) {
    if (r.start > at) add_run(v.runs, at, r.start - at, none);
    u64 c = r.categories;
    bool data = !(c & kPageIsGuard) && (c & kPageIsPresent) && !(c & (file ? kPageIsFile : kPageIsPfnZero));
    if (!data) {
      add_run(v.runs, r.start, r.end - r.start, none);
    } else {
      // Data: the written parts per page (their frames), the rest whole.
      for (at = r.start; at < r.end;) {
        while (w != written.end() && w->end <= at) ++w;
        u64 ws = w == written.end() ? r.end : std::clamp(w->start, at, r.end);
        if (ws > at) add_run(v.runs, at, ws - at, PageSource::Image);
        u64 we = w == written.end() ? r.end : std::min(w->end, r.end);
        if (we > ws) CKPT_TRY(pages.plan(m, v, ws, we, file, false));
        at = std::max(ws, we);
      }
    }
    at = r.end;
  }
  if (to > at) add_run(v.runs, at, to - at, none);
  return true;
}

// A mapping partly or wholly under dirty tracking: its tracked pieces
// planned from PAGEMAP_SCAN (plan_tracked_piece), the rest per page.
Status plan_with_tracking(PagemapPages &pages, const MapEntry &m, VmaPlan &v, bool file, const WrittenPages &t) {
  u64 at = m.start;
  auto it = std::partition_point(t.tracked.begin(), t.tracked.end(), [&](const AddressRange &r) { return r.end <= at; });
  while (at < m.end) {
    if (it != t.tracked.end() && it->start <= at) {
      u64 to = std::min(it->end, m.end);
      auto done = plan_tracked_piece(pages, m, v, at, to, file, t.written);
      if (!done) return done.error();
      if (!*done) CKPT_TRY(pages.plan(m, v, at, to, file, false));
      at = to;
      ++it;
    } else {
      u64 to = it == t.tracked.end() ? m.end : std::min(it->start, m.end);
      CKPT_TRY(pages.plan(m, v, at, to, file, false));
      at = to;
    }
  }
  return {};
}

}  // namespace

VmaPlan outline_vma(const MapEntry &m) {
  VmaPlan v;
  v.map = m;
  v.kind = kind_of(m);
  v.path = m.path;
  v.page_size = m.kernel_page_kb * 1024;
  const std::string deleted = " (deleted)";
  if (v.path.size() > deleted.size() && v.path.compare(v.path.size() - deleted.size(), deleted.size(), deleted) == 0) {
    v.path.resize(v.path.size() - deleted.size());
    v.flags |= kVmaDeletedFile;
  }
  if (m.shared) v.flags |= kVmaShared;
  if (m.has_flag("gd")) v.flags |= kVmaGrowsDown;
  if (m.has_flag("dd")) v.flags |= kVmaDontDump;
  if (m.has_flag("lo")) v.flags |= kVmaLocked;
  if (m.has_flag("lf")) v.flags |= kVmaLockOnFault;  // mlock2(MLOCK_ONFAULT)
  if (m.has_flag("hg")) v.flags |= kVmaHugePage;
  if (m.has_flag("nh")) v.flags |= kVmaNoHugePage;
  if (m.has_flag("dc")) v.flags |= kVmaDontFork;
  if (m.has_flag("wf")) v.flags |= kVmaWipeOnFork;
  if (m.has_flag("nr")) v.flags |= kVmaNoReserve;
  // Every private mapping may be written (a private copy); a shared one
  // only if its file was opened for writing, which restore must repeat
  // or a later mprotect(PROT_WRITE) fails with EACCES.
  if (m.shared && m.has_flag("mw")) v.flags |= kVmaMayWrite;
  // Whether the private mapping is charged to commit comes from its
  // history (ever writable, mprotect after), not from its protection now:
  // restore makes it so again (decision 237).
  if (!m.shared && m.has_flag("ac")) v.flags |= kVmaAccount;
  return v;
}

std::vector<VmaPlan> outline_vmas(const std::vector<MapEntry> &maps) {
  std::vector<VmaPlan> out;
  for (const MapEntry &m : maps) out.push_back(outline_vma(m));
  return out;
}

Expected<std::vector<VmaPlan>> plan_memory(pid_t pid, const std::vector<MapEntry> &maps,
                                           const ExcludedRanges *excluded_before, const WrittenPages *tracking) {
  CKPT_TRY(check_memory_supported(pid, maps));
  std::vector<VmaPlan> plan;
  int pagemap = open(("/proc/" + std::to_string(pid) + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) return make_error("cannot open /proc/%d/pagemap: %s", pid, strerror(errno));
  PagemapPages pages(pid, pagemap);
  std::map<u64, std::vector<u8>> build_ids;  // by inode: libraries map several times
  for (const MapEntry &m : maps) {
    VmaPlan v = outline_vma(m);
    if (v.kind == VmaKind::File) {
      // map_files names the very file mapped, even if the path was replaced
      // or unlinked (restore recreates a deleted executable at its size).
      std::string link = map_files_path(pid, m);
      struct stat st;
      if (stat(link.c_str(), &st) == 0) {
        v.file_size = st.st_size;
        v.file_mtime_ns = i64(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
      }
      if (m.offset == 0 && !(v.flags & kVmaDeletedFile)) {
        auto cached = build_ids.find(m.ino);
        if (cached == build_ids.end()) cached = build_ids.emplace(m.ino, img::read_build_id(link)).first;
        v.build_id = cached->second;
      }
    }
    u64 len = m.end - m.start;
    std::optional<PageSource> whole;  // the whole VMA is one run of this source
    switch (v.kind) {
      case VmaKind::Vvar:
      case VmaKind::VvarVclock:
      case VmaKind::Vsyscall:
        // Kernel-provided pages that restore maps anew; not readable anyway.
        whole = PageSource::Absent;
        break;
      case VmaKind::Hugetlb:
        if (!m.shared) break;  // private: pagemap says which pages exist
        [[fallthrough]];
      case VmaKind::Vdso:
      case VmaKind::SharedAnon:
      case VmaKind::SysvShm:
        // Shared memory may hold pages this process never touched; the vdso
        // is what gdb reads symbols from. Store all of it; zero pages
        // become holes when written.
        whole = PageSource::Image;
        break;
      default:
        break;
    }
    if (whole) {
      add_run(v.runs, m.start, len, *whole);
      plan.push_back(std::move(v));
      continue;
    }
    bool file = v.kind == VmaKind::File;
    if (file && (m.shared || (v.flags & kVmaDeletedFile))) {
      // A shared file mapping's bytes are the file's. A deleted file
      // cannot be reopened: keep everything of it, shared or private.
      add_run(v.runs, m.start, len, (v.flags & kVmaDeletedFile) ? PageSource::Image : PageSource::File);
      plan.push_back(std::move(v));
      continue;
    }
    // The first page of an ELF object mapped from offset 0 is stored even
    // when unchanged, as the kernel's and gdb's cores do: elfutils and BFD
    // find each module's build-id there, and gdb matches the executable.
    bool elf_head = file && m.offset == 0 && (m.prot & PROT_READ) && !v.build_id.empty();
    // Fast path: smaps says no anonymous page exists here.
    // (smaps counts hugetlb pages apart, never as Anonymous.)
    if (m.anonymous_kb == 0 && !m.has_flag("io") && m.swap_kb == 0 && !elf_head && v.kind != VmaKind::Hugetlb) {
      add_run(v.runs, m.start, len, file ? PageSource::File : PageSource::Zero);
      plan.push_back(std::move(v));
      continue;
    }
    Status planned = tracking && !elf_head && private_base_page_memory(v) ? plan_with_tracking(pages, m, v, file, *tracking)
                                           : pages.plan(m, v, m.start, m.end, file, elf_head);
    if (!planned) {
      close(pagemap);
      return planned.error();
    }
    plan.push_back(std::move(v));
  }
  close(pagemap);
  // Pages the process asked to leave out (ckpt_exclude) read as zeros.
  if (excluded_before) {
    apply_exclusions(plan, *excluded_before);
    return plan;
  }
  auto excluded = read_excluded_ranges(pid, maps);
  if (!excluded) return excluded.error();
  apply_exclusions(plan, *excluded);
  return plan;
}

// The PT_LOAD policy is libimg's (segment_plan.h); this only walks the plan.
SegmentLayout layout_segments(const std::vector<VmaPlan> &plan) {
  SegmentLayout out;
  out.run_segment.resize(plan.size());
  for (size_t vi = 0; vi < plan.size(); vi++) {
    const VmaPlan &v = plan[vi];
    u64 at = v.map.start;
    for (const PageRun &r : v.runs) {
      CKPT_ASSERT(r.start == at && r.length > 0 && r.start + r.length <= v.map.end)
          << "VMA 0x" << std::hex << v.map.start << "-0x" << v.map.end << ": run 0x" << r.start << "+0x" << r.length
          << " does not follow on at 0x" << at;
      at = r.start + r.length;
      out.run_segment[vi].push_back(plan_run_segments(out.segments, r.start, r.length, r.source, v.map.prot));
    }
    CKPT_ASSERT(at == v.map.end) << "VMA 0x" << std::hex << v.map.start << "-0x" << v.map.end
                                 << ": runs end at 0x" << at;
  }
  return out;
}

u64 stored_bytes(const std::vector<VmaPlan> &plan) {
  u64 n = 0;
  for (const VmaPlan &v : plan)
    for (const PageRun &r : v.runs)
      if (r.source == PageSource::Image) n += r.length;
  return n;
}

}  // namespace ckpt::writer
