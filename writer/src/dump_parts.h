// Pieces of dump_process (dump.cc) that need none of its state: the
// per-process record it carries along, the root's Tree note, and why a
// dump freezes fully.
#pragma once
#include <string>
#include <vector>

#include <ckpt/writer/dump.h>

#include "build_notes.h"
#include "capture.h"
#include "dirty_tracking.h"
#include "dirty_tracking_prearm.h"
#include "dump_guard.h"
#include "freeze_tree.h"
#include "memory.h"
#include "parent_compare.h"

namespace ckpt::writer {

// One live process of the tree on its way into the image.
struct CapturedProcess {
  ProcessCapture capture;
  SegmentLayout layout;
  img::ImageNotes notes;
  TrackerFd tracker;  ///< the dirty tracker an earlier dump left (not in the image)
  /// --parent: the process is in PREV (matching_core), so its core takes
  /// unchanged pages from its core there and has a Parent note.
  bool incremental = false;
  ParentSelection selection;
};

// The root's Tree note: one record per further process, in tree order
// (parents before children); offsets and sizes are the writer's to fill.
img::TableBuilder<img::TreeRecord> tree_table(const std::vector<TreeMember> &members);

// Why this dump freezes the tree for its whole length ("full (...)"), or ""
// for snapshot mode (DECISIONS.md 131).
std::string full_freeze_reason(const DumpOptions &opt, const std::vector<CapturedProcess> &procs,
                               const std::string &unguarded);

// The trackers this dump leaves, in the frozen tree (once nothing can
// refuse the dump), each process journalled with `guard` first: a
// process's own tracker (one pre-armed by this dump included) is reset and
// kept (DECISIONS 189, 260); any other (inherited from its parent, without
// an epoch) is closed in every process before any is armed, as its
// registrations would make the new one's EBUSY. Counts them in `stats`.
img::Status arm_tree_trackers(std::vector<CapturedProcess> &procs, DumpGuard &guard, const PreArmed &prearmed,
                              const img::u8 (&image_id)[16], std::vector<ArmedTracker> &armed, DumpStats &stats);

}  // namespace ckpt::writer
