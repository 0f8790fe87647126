// VmFlags from PREV's records instead of a page walk before the freeze
// (smaps_from_parent.h, DECISIONS 264).
#include "smaps_from_parent.h"

#include <algorithm>
#include <string>

namespace ckpt::writer {

using namespace img;

namespace {

// The VmaFlags bits that outline_vma (memory.cc) makes from VmFlags codes,
// and back. "mw" is recorded for shared mappings only, "ac" for private
// ones only (outline_vma); "lo"/"lf" are recorded too, but a locked
// mapping is never adopted from before the freeze (adopt_smaps_before).
struct FlagBit {
  u32 bit;
  const char *code;
};
constexpr FlagBit kRecorded[] = {
    {kVmaGrowsDown, "gd"}, {kVmaDontDump, "dd"},  {kVmaLocked, "lo"},    {kVmaLockOnFault, "lf"},
    {kVmaHugePage, "hg"},  {kVmaNoHugePage, "nh"}, {kVmaDontFork, "dc"}, {kVmaWipeOnFork, "wf"},
    {kVmaNoReserve, "nr"},
};

// Codes the window or the plan reads that no VmaFlags bit holds: "io"/"pf"
// (device memory; refused, or a kernel special mapping), "ht" (hugetlb).
bool said_by_parent(const std::string &code, bool shared) {
  for (const FlagBit &f : kRecorded)
    if (code == f.code) return true;
  if (code == "io" || code == "pf" || code == "ht") return true;
  return shared ? code == "mw" : code == "ac";
}

std::string path_of(const ChainLinkImage &prev, const VmaRecord &r) {
  std::string p(prev.view.vmas.str_or_empty(r.path));
  if (r.flags & kVmaDeletedFile) p += " (deleted)";
  return p;
}

// The codes a record says, sorted. Kernel quirk (the vvar data pages are
// inserted by pfn: VM_IO|VM_PFNMAP, arch/x86/entry/vdso and
// lib/vdso/datastore.c): smaps shows "io pf" on [vvar] and [vvar_vclock],
// which no VmaFlags bit records, and read_while_frozen reads "io".
std::vector<std::string> codes_of(const VmaRecord &r) {
  std::vector<std::string> out;
  bool shared = r.flags & kVmaShared;
  for (const FlagBit &f : kRecorded)
    if (r.flags & f.bit) out.push_back(f.code);
  if (shared && (r.flags & kVmaMayWrite)) out.push_back("mw");
  if (!shared && (r.flags & kVmaAccount)) out.push_back("ac");
  auto kind = VmaKind(r.kind);
  if (kind == VmaKind::Vvar || kind == VmaKind::VvarVclock) {
    out.push_back("io");
    out.push_back("pf");
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Bytes PREV's record stores in [start, end) (in this image, the parent's
// or an earlier core's): what smaps would count Anonymous, as far as
// estimated_stored_bytes (snapshot or full freeze) needs it.
u64 stored_bytes_in(const ChainLinkImage &prev, const VmaRecord &r, u64 start, u64 end) {
  u64 n = 0;
  for (u32 i = 0; i < r.range_count; i++) {
    if (r.first_range + i >= prev.view.ranges.records.size()) break;
    const PageRangeRecord &p = prev.view.ranges.records[r.first_range + i];
    auto src = PageSource(p.source);
    if (src != PageSource::Image && src != PageSource::Parent && src != PageSource::Earlier) continue;
    u64 s = std::max(start, p.start), e = std::min(end, p.start + p.length);
    if (s < e) n += e - s;
  }
  return n;
}

bool plain(const ChainLinkImage &prev, const VmaRecord &r) {
  if (VmaKind(r.kind) == VmaKind::Hugetlb) return false;
  // Kernel quirk (dup_mmap): a VM_DONTCOPY mapping is not in the copy, so
  // the copy's smaps could confirm none of its other flags.
  if (r.flags & kVmaDontFork) return false;
  // A page size other than the base one is hugetlb's; 0 is a writer's
  // before format minor 1 (the base page size).
  if (r.page_size != 0 && r.page_size != kPageSize) return false;
  // Absent: memory the dump did not read (device memory written with
  // --allow-unrestorable): flags PREV cannot say.
  auto kind = VmaKind(r.kind);
  bool special = kind == VmaKind::Vvar || kind == VmaKind::VvarVclock || kind == VmaKind::Vsyscall ||
                 kind == VmaKind::Vdso;
  for (u32 i = 0; !special && i < r.range_count; i++)
    if (r.first_range + i < prev.view.ranges.records.size() &&
        PageSource(prev.view.ranges.records[r.first_range + i].source) == PageSource::Absent)
      return false;
  return true;
}

}  // namespace

std::vector<std::string> flags_parent_can_say(const MapEntry &m) {
  std::vector<std::string> out;
  for (const std::string &f : m.vmflags)
    if (said_by_parent(f, m.shared)) out.push_back(f);
  std::sort(out.begin(), out.end());
  return out;
}

std::optional<std::vector<MapEntry>> maps_with_parent_flags(const std::vector<MapEntry> &now,
                                                            const ChainLinkImage &prev) {
  const std::vector<VmaRecord> &recs = prev.view.vmas.records;
  std::vector<MapEntry> out = now;
  size_t j = 0;
  for (MapEntry &m : out) {
    while (j < recs.size() && recs[j].end <= m.start) j++;
    // A mapping PREV has no record in is new since: nothing to go by.
    if (j >= recs.size() || recs[j].start >= m.end) return std::nullopt;
    // One VMA has one set of flags. PREV's records inside it are its
    // mappings merged since (the tracker's registration) or the part it
    // had before growing (brk, a stack growing down, a neighbour mapped
    // since with the same flags, which the kernel merges): they must agree
    // with it and among themselves. A record reaching out of the mapping
    // is a mapping split since, most often by an madvise or mprotect of
    // part of it, whose flags PREV cannot say.
    u64 stored = 0;
    std::vector<std::string> codes = codes_of(recs[j]);
    VmaKind kind = VmaKind(recs[j].kind);
    for (; j < recs.size() && recs[j].start < m.end; j++) {
      const VmaRecord &r = recs[j];
      bool shared = r.flags & kVmaShared;
      if (r.start < m.start || r.end > m.end || !plain(prev, r) || VmaKind(r.kind) != kind ||
          codes_of(r) != codes || r.prot != m.prot || shared != m.shared || r.dev_major != m.dev_major ||
          r.dev_minor != m.dev_minor || r.ino != m.ino || r.pgoff != m.offset + (r.start - m.start) ||
          path_of(prev, r) != m.path)
        return std::nullopt;
      stored += stored_bytes_in(prev, r, r.start, r.end);
    }
    m.vmflags = codes;
    // "uw": which ranges the tracker may still cover; the kernel decides
    // at the instant (dirty_tracking.cc: PM_SCAN_CHECK_WPASYNC refuses a
    // range not registered for async write-protection, which is compared).
    if (!m.shared) m.vmflags.push_back("uw");
    m.anonymous_kb = m.shared ? 0 : stored / 1024;
    m.kernel_page_kb = kPageSize / 1024;
    m.flags_from_parent = true;
  }
  return out;
}

}  // namespace ckpt::writer
