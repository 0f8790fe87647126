// The PT_LOAD policy (FORMAT.md §11.4): which segments a run of pages of
// one VMA becomes. The writer (dump) and the chain merge both lay memory
// out through here, so the policy and its limits live in one place.
#pragma once

#include <vector>

#include <ckpt/img/records.h>
#include <ckpt/img/writer.h>

namespace ckpt::img {

/// The shared zero block is at most this big: a longer Zero run becomes
/// several zero segments, each reading the block.
inline constexpr u64 kZeroBlockMax = 8ull << 20;
/// A Zero run longer than this (or in a mapping without PROT_READ) gets one
/// segment with no file bytes (p_filesz 0), as the kernel would dump it, so
/// that a streamed image stays small.
inline constexpr u64 kMaxZeroRun = 512ull << 20;

/// PF_R | PF_W | PF_X for a mapping's PROT_* bits.
u32 segment_flags(u32 prot);

/// Appends the segments for the run [start, start+length) of a VMA mapped
/// with `prot` whose bytes come from `source`, and returns the program
/// header index of the first of them: what PageRangeRecord::segment holds
/// (0 for an Absent run, which gets no segment). Runs must be appended in
/// ascending address order.
u32 plan_run_segments(std::vector<SegmentPlan> &segments, u64 start, u64 length, PageSource source, u32 prot);

}  // namespace ckpt::img
