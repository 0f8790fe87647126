#include <ckpt/img/segment_plan.h>

#include <algorithm>
#include <elf.h>
#include <sys/mman.h>

#include <ckpt/img/assert.h>

namespace ckpt::img {

u32 segment_flags(u32 prot) {
  return ((prot & PROT_READ) ? PF_R : 0) | ((prot & PROT_WRITE) ? PF_W : 0) | ((prot & PROT_EXEC) ? PF_X : 0);
}

u32 plan_run_segments(std::vector<SegmentPlan> &segments, u64 start, u64 length, PageSource source, u32 prot) {
  CKPT_ASSERT(length > 0 && start % kPageSize == 0 && length % kPageSize == 0)
      << "run 0x" << std::hex << start << "+0x" << length;
  CKPT_ASSERT(segments.empty() || segments.back().vaddr + segments.back().memsz <= start)
      << "run at 0x" << std::hex << start << " is below the last segment's end 0x"
      << segments.back().vaddr + segments.back().memsz;
  u32 first = ImageLayout::phdr_index_of_segment(segments.size());
  u32 flags = segment_flags(prot);
  switch (source) {
    case PageSource::Image:
      segments.push_back({start, length, length, flags, false});
      break;
    case PageSource::Zero:
      if (length <= kMaxZeroRun && (prot & PROT_READ)) {
        for (u64 off = 0; off < length; off += kZeroBlockMax) {
          u64 n = std::min(kZeroBlockMax, length - off);
          segments.push_back({start + off, n, n, flags, true});
        }
      } else {
        // Unreadable (a guard) or huge: no file bytes.
        segments.push_back({start, length, 0, flags, false});
      }
      break;
    case PageSource::File:
    case PageSource::Parent:
    case PageSource::Earlier:  // the bytes are another core's (§9.23)
      segments.push_back({start, length, 0, flags, false});
      break;
    case PageSource::Absent:
      first = 0;
      break;
  }
  return first;
}

}  // namespace ckpt::img
