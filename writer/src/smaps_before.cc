// smaps read before the freeze, checked in it and confirmed by the copy
// (smaps_before.h, DECISIONS 218).
#include "smaps_before.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include "smaps_from_parent.h"

namespace ckpt::writer {

using img::Expected;
using img::make_error;

namespace {

// VmFlags the copy does not inherit, so that the copy cannot confirm them.
// Kernel quirk (mm/mmap.c dup_mmap, fs/userfaultfd.c dup_userfaultfd):
// fork clears VM_LOCKED and VM_LOCKONFAULT ("lo", "lf") in the child, and
// a userfaultfd context without UFFD_FEATURE_EVENT_FORK is dropped from
// the child's mappings with its VM_UFFD_MISSING/WP/MINOR ("um", "uw",
// "ui"; the dirty tracker's registration is one). "sd" (soft-dirty, not
// built on this kernel) is not used by the image. Locked mappings are
// excluded at the instant by VmLck (adopt_smaps_before); the uffd flags
// and "sd" go into no record. `--parent` reads "uw" (which ranges the
// tracker still covers) from the smaps of before, or guesses it from PREV
// (smaps_from_parent.cc), but trusts the kernel at
// the instant: PAGEMAP_SCAN's PM_SCAN_CHECK_WPASYNC refuses a range not
// registered for async write-protection, and that range is compared.
constexpr std::array<const char *, 6> kFlagsForkDrops = {"lo", "lf", "um", "uw", "ui", "sd"};

bool fork_drops(const std::string &flag) {
  for (const char *f : kFlagsForkDrops)
    if (flag == f) return true;
  return false;
}

std::vector<std::string> kept_flags(const MapEntry &m) {
  std::vector<std::string> out;
  for (const std::string &f : m.vmflags)
    if (!fork_drops(f)) out.push_back(f);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

bool same_header(const MapEntry &a, const MapEntry &b) {
  return a.start == b.start && a.end == b.end && a.prot == b.prot && a.shared == b.shared && a.offset == b.offset &&
         a.dev_major == b.dev_major && a.dev_minor == b.dev_minor && a.ino == b.ino && a.path == b.path;
}

namespace {

// A mapping snapshot mode reads while the target is frozen (snapshot_plan.h
// read_while_frozen: shared memory, DONTFORK, WIPEONFORK, VM_IO, hugetlb):
// it is planned inside the window, where only stale counters exist.
bool read_while_frozen(const MapEntry &m) {
  return m.shared || m.has_flag("dc") || m.has_flag("wf") || m.has_flag("io") || m.has_flag("ht");
}

std::string at(const MapEntry &m) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "0x%llx-0x%llx", (unsigned long long)m.start, (unsigned long long)m.end);
  return buf;
}

}  // namespace

std::map<pid_t, std::vector<MapEntry>> read_smaps_before_freeze(pid_t root, const img::Chain &parent) {
  std::map<pid_t, std::vector<MapEntry>> out;
  std::vector<pid_t> todo = {root};
  for (size_t i = 0; i < todo.size() && todo.size() < 4096; i++) {
    // A pid PREV holds may be another process by now: then its flags are
    // a wrong guess the copy's smaps shows, and the dump runs again.
    const img::ChainLinkImage *prev = parent.empty() ? nullptr : img::core_of(*parent[0], todo[i]);
    if (prev) {
      auto brief = read_maps(todo[i], /*brief=*/true);
      std::optional<std::vector<MapEntry>> guessed;
      if (brief) guessed = maps_with_parent_flags(*brief, *prev);
      if (guessed) out[todo[i]] = std::move(*guessed);
    }
    if (!out.count(todo[i])) {
      auto maps = read_maps(todo[i]);
      if (maps) out[todo[i]] = maps.take();
    }
    auto kids = list_children_by_thread(todo[i]);
    if (!kids) continue;
    for (const ChildOf &c : *kids) todo.push_back(c.child);
  }
  return out;
}

Expected<std::optional<std::vector<MapEntry>>> adopt_smaps_before(pid_t pid, const std::vector<MapEntry> &before,
                                                                   const ProcStatus &status) {
  std::optional<std::vector<MapEntry>> none;
  // A locked mapping adds its size to mm->locked_vm (VmLck) when mmap or
  // mlock makes it (mm/mlock.c mlock_fixup, mm/vma.c __mmap_complete; the
  // kernel clears VM_LOCKED where it does not count it), so VmLck 0 at the
  // instant means no "lo"/"lf" anywhere, which the copy cannot tell.
  if (!status.vm_lck_kb || *status.vm_lck_kb != 0) return none;
  for (const MapEntry &m : before)
    if (m.has_flag("lo") || m.has_flag("lf")) return none;
  auto now = read_maps(pid, /*brief=*/true);
  if (!now) return now.error();
  if (now->size() != before.size()) return none;
  for (size_t i = 0; i < before.size(); i++)
    if (!same_header(before[i], (*now)[i])) return none;
  std::vector<MapEntry> maps = before;
  for (MapEntry &m : maps) {
    if (!read_while_frozen(m)) continue;
    // Counters of before the freeze: the program may have written pages
    // since. A non-zero Anonymous makes plan_memory read pagemap instead of
    // trusting "no anonymous page"; a non-zero Swap makes it take a
    // uffd-wp swap marker for data (a zero page read, not a page lost).
    m.anonymous_kb = std::max<u64>(m.anonymous_kb, (m.end - m.start) / 1024);
    m.swap_kb = std::max<u64>(m.swap_kb, 1);
  }
  return std::optional<std::vector<MapEntry>>(std::move(maps));
}

bool confirm_smaps(std::vector<MapEntry> &maps, const std::vector<MapEntry> &later, bool of_copy, std::string &why) {
  u64 later_total = 0, covered = 0;
  for (const MapEntry &c : later) later_total += c.end - c.start;
  size_t j = 0;
  for (MapEntry &t : maps) {
    while (j < later.size() && later[j].end <= t.start) j++;
    bool overlaps = j < later.size() && later[j].start < t.end;
    // Kernel quirk (dup_mmap): a VM_DONTCOPY mapping is not in the copy.
    if (of_copy && t.has_flag("dc")) {
      if (overlaps) {
        why = std::string("the mapping at ") + at(t) + " is no longer MADV_DONTFORK";
        return false;
      }
      continue;
    }
    // The dirty tracker's registration may have merged neighbours (or the
    // kernel split one): compare by address, not mapping by mapping.
    u64 pos = t.start, anon = 0, swap = 0, rss = 0, page_kb = 0;
    bool within = true;  // no part of the copy's mappings here lies outside t
    std::vector<std::string> flags = kept_flags(t);
    for (size_t k = j; k < later.size() && later[k].start < t.end; k++) {
      const MapEntry &c = later[k];
      if (c.start > pos) break;
      if (c.prot != t.prot || c.shared != t.shared || c.dev_major != t.dev_major || c.dev_minor != t.dev_minor ||
          c.ino != t.ino || c.path != t.path || c.offset + (pos - c.start) != t.offset + (pos - t.start)) {
        why = std::string("the mapping at ") + at(t) + " changed";
        return false;
      }
      // Flags from PREV (smaps_from_parent.h) hold only what PREV can say;
      // the mapping takes the copy's (all pieces' alike, as below).
      if (t.flags_from_parent && k == j) {
        if (flags_parent_can_say(c) != flags_parent_can_say(t)) {
          why = std::string("the VmFlags of the mapping at ") + at(t) + " are not the parent's";
          return false;
        }
        flags = kept_flags(c);
      }
      if (kept_flags(c) != flags) {
        why = std::string("the VmFlags of the mapping at ") + at(t) + " changed";
        return false;
      }
      anon += c.anonymous_kb;
      within = within && c.start >= t.start && c.end <= t.end;
      swap += c.swap_kb;
      rss += c.rss_kb;
      page_kb = c.kernel_page_kb;
      pos = c.end;
    }
    if (pos < t.end) {
      why = std::string("the mapping at ") + at(t) + (of_copy ? " is not in the copy" : " is gone");
      return false;
    }
    // Merged with a neighbour: the sums are a bound, zero only where no
    // part has a page (all the plan's fast path needs), and kept below the
    // mapping's size, which a plan under dirty tracking reads as "every
    // page a present anonymous page" (memory.cc plan_tracked_piece).
    u64 size_kb = (t.end - t.start) / 1024;
    if (!within && anon >= size_kb) anon = size_kb - 1;
    if (t.flags_from_parent) {
      t.vmflags = flags;
      t.flags_from_parent = false;
    }
    t.anonymous_kb = anon;
    t.swap_kb = swap;
    t.rss_kb = rss;
    t.kernel_page_kb = page_kb;
    covered += t.end - t.start;
  }
  if (later_total != covered) {
    why = of_copy ? "the copy has mappings the target did not show" : "the target has new mappings";
    return false;
  }
  return true;
}

}  // namespace ckpt::writer
