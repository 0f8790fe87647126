#include "snapshot_plan.h"

#include <algorithm>
#include <set>

namespace ckpt::writer {

using namespace img;

// What fork leaves out of the copy or shares with the target, so that the
// copy's bytes would not be as of the frozen instant: MAP_SHARED memory
// (both see later writes), MADV_DONTFORK (absent in the copy),
// MADV_WIPEONFORK (zeros there), VM_IO/PFNMAP (not copied), and hugetlb
// (a private huge page the target writes later may be taken from the copy:
// hugetlb's unmap_ref_private).
bool read_while_frozen(const VmaPlan &v) {
  return (v.flags & (kVmaShared | kVmaDontFork | kVmaWipeOnFork)) || v.map.has_flag("io") ||
         v.kind == VmaKind::Hugetlb || v.kind == VmaKind::SysvShm || v.kind == VmaKind::SharedAnon;
}

u64 estimated_stored_bytes(const std::vector<MapEntry> &maps) {
  u64 n = 0;
  for (const MapEntry &m : maps) n += m.shared ? m.end - m.start : (m.anonymous_kb + m.swap_kb) * 1024;
  return n;
}

Expected<std::vector<VmaPlan>> plan_read_while_frozen(pid_t target, const std::vector<VmaPlan> &memory,
                                                      const ExcludedRanges &excluded) {
  std::vector<VmaPlan> out;
  std::vector<MapEntry> unplanned;
  for (const VmaPlan &v : memory) {
    if (!read_while_frozen(v)) continue;
    if (!v.runs.empty()) out.push_back(v);
    else unplanned.push_back(v.map);
  }
  if (!unplanned.empty()) {
    auto planned = plan_memory(target, unplanned, &excluded);
    if (!planned) return planned.error();
    for (VmaPlan &v : *planned) out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const VmaPlan &a, const VmaPlan &b) { return a.map.start < b.map.start; });
  return out;
}

Expected<std::vector<VmaPlan>> plan_from_copy(pid_t copy, const std::vector<MapEntry> &maps,
                                              const std::vector<VmaPlan> &early, const ExcludedRanges &excluded,
                                              const WrittenPages *tracking) {
  std::set<u64> early_starts;
  for (const VmaPlan &v : early) early_starts.insert(v.map.start);
  std::vector<MapEntry> rest;
  for (const MapEntry &m : maps)
    if (!early_starts.count(m.start)) rest.push_back(m);
  // The copy's mappings are the target's one for one (dup_mmap), but for
  // MADV_DONTFORK ones, which are all in `early`.
  // The copy holds no uffd-wp markers (fork drops them with the tracker's
  // registration: mm/memory.c copy_pte_marker), so its PAGEMAP_SCAN
  // categories mean what they say.
  auto planned = plan_memory(copy, rest, &excluded, tracking);
  if (!planned) return planned.error().context("the snapshot copy");
  std::vector<VmaPlan> out = planned.take();
  out.insert(out.end(), early.begin(), early.end());
  std::sort(out.begin(), out.end(), [](const VmaPlan &a, const VmaPlan &b) { return a.map.start < b.map.start; });
  return out;
}

}  // namespace ckpt::writer
