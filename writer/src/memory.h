// The memory of a frozen process: which bytes of each VMA go into the image
// (pagemap decides), and streaming them into an ImageWriter.
#pragma once

#include <atomic>
#include <functional>
#include <sys/types.h>
#include <utility>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>
#include <ckpt/img/writer.h>

#include "procfs.h"

namespace ckpt::writer {

/// A run of pages of one VMA with one source.
struct PageRun {
  img::u64 start = 0, length = 0;
  img::PageSource source = img::PageSource::Zero;
  // Earlier only: the same bytes are stored by process `earlier_pid` at
  // `earlier_addr` (cow_sharing.h).
  img::u64 earlier_addr = 0;
  pid_t earlier_pid = 0;
};

/// Present private pages of a VMA by physical frame (pagemap PFN):
/// [start, start + pages * 4096) is frames pfn, pfn + 1, ...
struct PfnRun {
  img::u64 start = 0, pfn = 0, pages = 0;
};

struct VmaPlan {
  MapEntry map;
  img::VmaKind kind = img::VmaKind::Anon;
  img::u32 flags = 0;              ///< img::VmaFlags
  std::string path;                ///< file path without " (deleted)"
  img::u64 file_size = 0;          ///< of the mapped file, for File kinds
  img::i64 file_mtime_ns = 0;
  std::vector<img::u8> build_id;   ///< of an ELF file mapped from offset 0
  img::u64 page_size = 0;          ///< the kernel's page size for it (hugetlb: huge)
  std::vector<PageRun> runs;       ///< ascending, tiling the VMA
  /// The frames of the private pages stored as Image that pagemap showed
  /// present with a PFN (as root; PFNs read as 0 otherwise, and then this
  /// stays empty), ascending: what cow_sharing.h compares across a tree.
  std::vector<PfnRun> frames;
};

/// Page ranges, ascending, disjoint.
struct AddressRange {
  img::u64 start = 0, end = 0;
};

/// What dirty tracking knows since the parent (dirty_tracking.h fills it).
struct WrittenPages {
  std::vector<AddressRange> tracked;  ///< where tracking was continuous since the parent
  std::vector<AddressRange> written;  ///< within tracked: pages written since the parent
  /// Whether [start, end) lies wholly in tracked.
  bool covers(img::u64 start, img::u64 end) const;
  /// Whether [start, end) holds no written page.
  bool clean(img::u64 start, img::u64 end) const;
};

/// Private anonymous, heap, stack or file memory of base pages, not of a
/// deleted file: what dirty tracking covers and `--parent` compares.
inline bool private_base_page_memory(const VmaPlan &v) {
  if (v.page_size != 0 && v.page_size != img::kPageSize) return false;
  if (v.flags & (img::kVmaShared | img::kVmaDeletedFile)) return false;
  switch (v.kind) {
    case img::VmaKind::Anon:
    case img::VmaKind::Heap:
    case img::VmaKind::Stack:
    case img::VmaKind::File:
      return true;
    default:
      return false;
  }
}

/// Decides, from /proc/PID/pagemap and smaps, where each page's bytes come
/// from: touched anonymous pages are stored (Image), untouched ones and the
/// shared zero page read as zeros (Zero), unchanged pages of private file
/// mappings come from the file (File), [vvar]/[vsyscall] are Absent.
/// `excluded`: the ckpt_exclude ranges read earlier (snapshot mode reads
/// them from the target while frozen); null: read them from pid now.
/// `tracking` (a --parent dump, pid a snapshot copy, which holds no uffd-wp
/// markers): the pieces of private base-page memory it covers are planned
/// from PAGEMAP_SCAN's runs, and only their written pages get frames.
img::Expected<std::vector<VmaPlan>> plan_memory(pid_t pid, const std::vector<MapEntry> &maps,
                                                const std::vector<std::pair<img::u64, img::u64>> *excluded = nullptr,
                                                const WrittenPages *tracking = nullptr);

/// Each mapping's plan without its pages and file details (no runs): its
/// kind and flags, which snapshot mode decides from while the pages are
/// planned only later, from the copy (snapshot_plan.h).
std::vector<VmaPlan> outline_vmas(const std::vector<MapEntry> &maps);
VmaPlan outline_vma(const MapEntry &m);

/// The segments (PT_LOADs) for a plan, in address order, and for every run
/// the program header index that holds it (or 0 if none).
struct SegmentLayout {
  std::vector<img::SegmentPlan> segments;
  std::vector<std::vector<img::u32>> run_segment;   ///< [vma][run]
};
SegmentLayout layout_segments(const std::vector<VmaPlan> &plan);

class PagesReadEarlier;  // snapshot.h

/// Streams every Image run's bytes into the writer in segment order:
/// process_vm_readv in large batches, /proc/PID/mem for what it cannot
/// read (PROT_NONE, VM_IO), all-zero pages as holes. `progress` is called
/// with the bytes done so far after each batch. Stops with an error before
/// the next batch once *cancel is true. Snapshot mode: pid is the frozen
/// copy, and the runs in `early` (read from the target while frozen) are
/// taken from there.
img::Status write_memory(pid_t pid, const std::vector<VmaPlan> &plan, img::ImageWriter &writer,
                         const std::function<void(img::u64)> &progress, const std::atomic<bool> *cancel = nullptr,
                         const PagesReadEarlier *early = nullptr);

/// Bytes of all Image runs.
img::u64 stored_bytes(const std::vector<VmaPlan> &plan);

}  // namespace ckpt::writer
