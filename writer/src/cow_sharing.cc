#include "cow_sharing.h"

#include <unordered_map>

namespace ckpt::writer {

using namespace img;

namespace {

// Where an earlier process stores a frame's bytes: its pid, the address,
// and which of its Image runs holds it (a reference stays inside one).
struct Stored {
  pid_t pid = 0;
  u64 addr = 0;
  u64 run = 0;
};

// Walks a VMA's frames alongside its pages: frame_at(addr) for ascending
// addresses, 0 where pagemap gave none.
class FrameCursor {
 public:
  explicit FrameCursor(const std::vector<PfnRun> &frames) : frames_(frames) {}
  u64 frame_at(u64 addr) {
    while (i_ < frames_.size() && frames_[i_].start + frames_[i_].pages * kPageSize <= addr) i_++;
    if (i_ == frames_.size() || frames_[i_].start > addr) return 0;
    return frames_[i_].pfn + (addr - frames_[i_].start) / kPageSize;
  }

 private:
  const std::vector<PfnRun> &frames_;
  size_t i_ = 0;
};

// Appends one page (or a run of another source) to `runs`, extending the
// last run when it continues it: same source, and for Earlier the next
// address of the same stored run of the same process.
void append(std::vector<PageRun> &runs, const PageRun &page, u64 source_run, u64 &last_source_run) {
  if (!runs.empty()) {
    PageRun &last = runs.back();
    bool follows = last.source == page.source && last.start + last.length == page.start;
    if (follows && page.source == PageSource::Earlier)
      follows = last.earlier_pid == page.earlier_pid && last.earlier_addr + last.length == page.earlier_addr &&
                last_source_run == source_run;
    if (follows) {
      last.length += page.length;
      return;
    }
  }
  runs.push_back(page);
  last_source_run = source_run;
}

}  // namespace

CowSharing share_cow_pages(const std::vector<SharingMember> &members) {
  CowSharing out;
  std::unordered_map<u64, Stored> stored;  // frame -> where an earlier process stores its bytes
  u64 run_ids = 0;
  for (size_t mi = 0; mi < members.size(); mi++) {
    const SharingMember &m = members[mi];
    // This process's own stored frames join `stored` only once it is done:
    // a core refers to earlier cores, never to itself.
    std::vector<std::pair<u64, Stored>> own;
    for (VmaPlan &v : *m.memory) {
      if (v.frames.empty()) continue;
      std::vector<PageRun> runs;
      if (mi == 0) {
        runs = v.runs;
      } else {
        FrameCursor cursor(v.frames);
        u64 last_source_run = 0;
        for (const PageRun &r : v.runs) {
          if (r.source != PageSource::Image) {
            append(runs, r, 0, last_source_run);
            continue;
          }
          for (u64 addr = r.start; addr < r.start + r.length; addr += kPageSize) {
            u64 frame = cursor.frame_at(addr);
            auto found = frame ? stored.find(frame) : stored.end();
            if (found == stored.end()) {
              append(runs, {addr, kPageSize, PageSource::Image, 0, 0}, 0, last_source_run);
              continue;
            }
            append(runs, {addr, kPageSize, PageSource::Earlier, found->second.addr, found->second.pid},
                   found->second.run, last_source_run);
            out.bytes += kPageSize;
          }
        }
      }
      // The frames this process stores, by the stored run that holds them.
      FrameCursor cursor(v.frames);
      for (const PageRun &r : runs) {
        if (r.source != PageSource::Image) continue;
        u64 id = ++run_ids;
        for (u64 addr = r.start; addr < r.start + r.length; addr += kPageSize)
          if (u64 frame = cursor.frame_at(addr)) own.push_back({frame, {m.pid, addr, id}});
      }
      for (const PageRun &r : runs)
        if (r.source == PageSource::Earlier) out.ranges++;
      v.runs = std::move(runs);
    }
    for (const auto &[frame, where] : own) stored.emplace(frame, where);  // the first process storing it wins
  }
  return out;
}

}  // namespace ckpt::writer
