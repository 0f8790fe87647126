// CowPages (FORMAT.md §9.23): memory a forked tree still shares
// copy-on-write, stored once. The writer names the source of each
// referenced range by process and address; here, once every core's layout
// is planned, those become file offsets (the writer never computes one).
#pragma once

#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/note.h>
#include <ckpt/img/writer.h>

namespace ckpt::img {

/// One core of a tree image as planned: its pid, its segments and layout,
/// where its ELF header lies in the whole file, and its notes.
struct PlannedCore {
  i32 pid = 0;
  const std::vector<SegmentPlan> *segments = nullptr;
  const ImageLayout *layout = nullptr;
  u64 base = 0;
  std::vector<Note> *notes = nullptr;
};

/// Fills in `file_offset` of every CowPages record of every core (cores[0]
/// is the root): the stored bytes of `source_addr` in the core of
/// `source_pid`, which must come earlier and hold them in a PT_LOAD with
/// file bytes. Only u64 fields change, so no note changes size.
Status resolve_cow_pages(const std::vector<PlannedCore> &cores);

}  // namespace ckpt::img
