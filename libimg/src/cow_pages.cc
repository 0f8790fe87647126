// CowPages (cow_pages.h): resolving the writer's references into file
// offsets, and the cross-core check readers do before trusting them.
#include "cow_pages.h"

#include <algorithm>
#include <cstring>
#include <map>

#include <ckpt/img/model.h>
#include <ckpt/img/table.h>

namespace ckpt::img {

Status resolve_cow_pages(const std::vector<PlannedCore> &cores) {
  std::map<i32, size_t> index;
  for (size_t i = 0; i < cores.size(); i++) {
    const PlannedCore &c = cores[i];
    for (Note &n : *c.notes) {
      if (n.owner != kOwnerCkpt || n.type != static_cast<u32>(CkptNote::CowPages)) continue;
      if (i == 0) return make_error("the root core (pid %d) has copy-on-write pages: nothing is stored before it", c.pid);
      auto raw = parse_table(n.desc);
      if (!raw) return raw.error().context("copy-on-write pages of process " + std::to_string(c.pid));
      if (raw->header.record_size < sizeof(CowPagesRecord))
        return make_error("copy-on-write pages records of %u bytes are shorter than %zu", raw->header.record_size,
                          sizeof(CowPagesRecord));
      size_t records_at = raw->records.data() - n.desc.data();
      for (u32 k = 0; k < raw->header.record_count; k++) {
        u8 *rec = n.desc.data() + records_at + size_t(k) * raw->header.record_size;
        CowPagesRecord r;
        std::memcpy(&r, rec, sizeof r);
        auto source = index.find(r.source_pid);
        if (source == index.end())
          return make_error("process %d: copy-on-write pages at 0x%llx name process %d, which is not stored before it",
                            c.pid, (unsigned long long)r.start, r.source_pid);
        const PlannedCore &s = cores[source->second];
        const std::vector<SegmentPlan> &segs = *s.segments;
        // Segments ascend by address (plan_layout checked): the one that
        // could hold source_addr is the first that ends after it.
        auto it = std::partition_point(segs.begin(), segs.end(),
                                       [&](const SegmentPlan &p) { return p.vaddr + p.memsz <= r.source_addr; });
        if (it == segs.end() || it->zero || it->vaddr > r.source_addr ||
            r.source_addr - it->vaddr + r.length > it->filesz)
          return make_error("process %d: copy-on-write pages at 0x%llx: process %d stores no bytes at 0x%llx+0x%llx",
                            c.pid, (unsigned long long)r.start, r.source_pid, (unsigned long long)r.source_addr,
                            (unsigned long long)r.length);
        u64 offset = s.base + s.layout->segment_offsets[it - segs.begin()] + (r.source_addr - it->vaddr);
        std::memcpy(rec + offsetof(CowPagesRecord, file_offset), &offset, 8);
      }
    }
    index.emplace(c.pid, i);
  }
  return {};
}

Status check_cow_sources(const std::vector<TreeCore> &cores) {
  std::map<i32, size_t> index;
  for (size_t i = 0; i < cores.size(); i++) {
    const CkptView &v = *cores[i].view;
    i32 pid = v.identity.root_pid;
    for (const CowPagesRecord &c : v.cow_pages.records) {
      auto bad = [&](const char *what) {
        return make_error("process %d: copy-on-write pages at 0x%llx (%llu bytes, from process %d at 0x%llx): %s", pid,
                          (unsigned long long)c.start, (unsigned long long)c.length, c.source_pid,
                          (unsigned long long)c.source_addr, what);
      };
      auto source = index.find(c.source_pid);
      if (source == index.end()) return bad("that process is not stored before this one");
      const TreeCore &s = cores[source->second];
      const auto &ranges = s.view->ranges.records;
      // A process's ranges ascend (VMAs in address order, ranges tiling each).
      auto it = std::partition_point(ranges.begin(), ranges.end(),
                                     [&](const PageRangeRecord &r) { return r.start + r.length <= c.source_addr; });
      if (it == ranges.end() || static_cast<PageSource>(it->source) != PageSource::Image ||
          it->start > c.source_addr || c.source_addr - it->start + c.length > it->length)
        return bad("that process stores no such bytes");
      if (stored_range(*s.image, *it).file_offset + (c.source_addr - it->start) != c.file_offset)
        return bad("the file offset is not where that process stores them");
    }
    index.emplace(pid, i);
  }
  return {};
}

}  // namespace ckpt::img
