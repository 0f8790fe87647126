// Dirty-page tracking between dumps, for `dump --parent` (issue #11):
// which pages a process wrote since the previous dump, without reading them.
//
// A dump that lets the process run on leaves a *tracker* in it: a
// userfaultfd in async write-protect mode (UFFD_FEATURE_WP_ASYNC), made by
// injected syscalls, registered over the process's private writable
// mappings and write-protected from outside with PAGEMAP_SCAN. A write then
// clears a page's protection in the kernel (no signal, no fault the program
// sees), so the next dump finds exactly the written pages with one
// PAGEMAP_SCAN of /proc/PID/pagemap. The tracker is an fd in the process
// (the uffd context lives only as long as one does): high in its table,
// O_CLOEXEC, marked O_APPEND so that the dumper knows it for its own; the
// dump leaves it out of the image, so restore never makes one. Each dump
// makes a new tracker (a new inode) and records it in the image's
// DirtyTracking note; tracking is trusted against PREV only if the tracker
// found is the one PREV recorded (docs/design/dirty-tracking.md).
//
// A later dump reuses the tracker instead of closing it and making a new
// one (closing clears the write-protection of every page, arming sets it
// again: both walk the whole address space inside the freeze). Its reset
// write-protects only the pages written since (one PAGEMAP_SCAN with
// PM_SCAN_WP_MATCHING). What tells a reset tracker from the one PREV saw is
// its *epoch*: kept in a second fd beside the tracker, a memfd named
// "ckpt-dirty-tracker" (also O_APPEND, close-on-exec) holding the owner's
// pid and start time, the tracker's inode and the image id of the dump
// that last reset it, written before the reset (DECISIONS 189).
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/dirty_tracking_note.h>
#include <ckpt/img/records.h>

#include "capture.h"

namespace ckpt::writer {

// AddressRange and WrittenPages (what tracking knows since the parent) are
// declared in memory.h, whose page plan uses them.

/// The contents of the epoch memfd (40 bytes, native byte order).
struct TrackerEpoch {
  img::u32 magic = 0;        ///< kTrackerEpochMagic
  img::i32 pid = 0;          ///< the process whose tracker this is (a forked child inherits both fds)
  img::u64 start_time = 0;   ///< its /proc/PID/stat field 22
  img::u64 tracker_ino = 0;  ///< the userfaultfd it belongs to
  img::u8 image_id[16] = {}; ///< the dump that last reset the tracker (written before the reset)
};
static_assert(sizeof(TrackerEpoch) == 40);
inline constexpr img::u32 kTrackerEpochMagic = 0x434b5745;  // "EWKC"
/// The epoch memfd's name (its /proc/PID/fd link: "/memfd:NAME (deleted)").
inline constexpr const char *kTrackerEpochName = "ckpt-dirty-tracker";

/// The dump's own tracker in a process's fd table, if there is one.
struct TrackerFd {
  int fd = -1;
  img::u64 ino = 0;
  int epoch_fd = -1;         ///< the epoch memfd, if there is one
  TrackerEpoch epoch;        ///< its contents (zeros when unreadable)
};

/// Whether a /proc/PID/fd link is of the kind a tracker or its epoch memfd
/// is: any userfaultfd, the dumper's or the program's, and any memfd named
/// kTrackerEpochName.
bool tracker_kind(const std::string &link);

/// A copy of process pid's epoch memfd `fd` (pidfd_getfd: the same open
/// file, so what is written through it the process sees at once), to be
/// closed by the caller; an error naming pid and fd.
img::Expected<int> epoch_fd_copy(pid_t pid, int fd);

/// Takes the dumper's tracker (a userfaultfd marked O_APPEND) and its
/// epoch memfd out of a captured fd table of process pid (they are not the
/// program's and never go into an image), and reads the epoch.
TrackerFd take_tracker_fd(pid_t pid, FdTable &fds);

/// Whether `old` is pc's own tracker with a usable epoch, so that this dump
/// may reset and reuse it (continue_tracking) instead of making a new one:
/// the epoch names pc (not a parent it was inherited from) and this
/// tracker.
bool tracker_continues(const ProcessCapture &pc, const TrackerFd &old);

/// The pages process pc wrote since the image `parent` (image id
/// `parent_id`) was taken, if the tracker that image armed is still the one
/// in the process (same inode, pid, start time and boot) and no later dump
/// reset it (its epoch names `parent_id`), and only over the ranges it
/// armed that are still registered (mremap, munmap+mmap, exec and close
/// lose registration). Ranges outside `tracked` must be compared. Returns
/// an empty WrittenPages and `why` when tracking cannot be used at all.
img::Expected<WrittenPages> read_written_pages(const ProcessCapture &pc, const TrackerFd &tracker,
                                               const img::ImageReader &parent, const img::u8 (&parent_id)[16],
                                               std::string &why);

/// A tracker made by arm_tracking or reset by continue_tracking.
struct ArmedTracker {
  img::u64 ino = 0;                   ///< 0: none armed (why says why)
  bool reused = false;                ///< continue_tracking's
  std::vector<AddressRange> ranges;   ///< registered and write-protected
  std::string why;
};

/// Closes the old tracker in the frozen process. Every process holding it
/// must close it before any is armed again: its context (and the mappings
/// registered with it, which a new one cannot register: EBUSY) lives as
/// long as one fd does, and a forked child inherits the fd.
img::Status close_tracker(const ProcessCapture &pc, const TrackerFd &old);

/// Makes a new tracker in the frozen process, registers its private
/// writable mappings and write-protects them. Run after read_written_pages
/// and close_tracker, before memory is read. Failing to arm is not an
/// error for the dump (the next --parent dump compares): ArmedTracker says
/// why. Errors are only what leaves the process in doubt.
/// `image_id` is this dump's (the tracker's epoch from now on).
/// `protect_now` false (the pre-arm, dirty_tracking_prearm.h): the tracker
/// is made, registered and given its epoch, but its pages are left for the
/// caller to protect (protect_written) once the process runs again.
img::Expected<ArmedTracker> arm_tracking(const ProcessCapture &pc, const img::u8 (&image_id)[16],
                                         bool protect_now = true);

/// Write-protects every page of `ranges` (registered with pid's tracker)
/// that counts as written: after a registration every page does, after a
/// reset only those written since. Returns the ranges protected; one left
/// unprotected stays registered but is not listed. Safe while pid runs: a
/// page written during the walk just counts as written.
img::Expected<std::vector<AddressRange>> protect_written(pid_t pid, const std::vector<AddressRange> &ranges);

/// Reuses pc's tracker `old` (tracker_continues): writes this dump's
/// `image_id` into its epoch first (no earlier image matches it any more,
/// whatever happens next),
/// registers the private writable mappings not registered yet, and
/// write-protects again every page written since the last reset, and every
/// page of a mapping new to it, with one PAGEMAP_SCAN per range: the
/// frozen instant is the tracker's new start. Failing to register is not
/// an error (ArmedTracker says why).
img::Expected<ArmedTracker> continue_tracking(const ProcessCapture &pc, const TrackerFd &old,
                                             const img::u8 (&image_id)[16]);

/// Which process a tracker belongs to: the same pid, started at the same
/// time, in the same boot.
struct TrackingIdentity {
  img::u8 boot_id[16] = {};
  img::u64 start_time = 0;  ///< /proc/PID/stat field 22
  pid_t pid = 0;
};
/// This boot's id (/proc/sys/kernel/random/boot_id as 16 bytes).
img::Status read_boot_id(img::u8 (&out)[16]);
/// Which process `pc` is across dumps (its pid, stat.start_time and boot_id,
/// all read by capture_process).
TrackingIdentity identity_of(const ProcessCapture &pc);

/// One PAGEMAP_SCAN walk of [start, end) of an open /proc/PID/pagemap for
/// written pages (appended to *written when given), write-protecting them
/// again with `write_protect`. Returns 0 or an errno (EPERM: a VMA there
/// is not registered for async write-protection).
int scan_written(int pagemap, img::u64 start, img::u64 end, bool write_protect, std::vector<AddressRange> *written);

/// The DirtyTracking record of an image (armed ranges as its blob).
void add_tracking_record(img::TableBuilder<img::DirtyTrackingRecord> &table, const ProcessCapture &pc,
                         const ArmedTracker &armed, img::u32 flags, img::u64 tracked_bytes, img::u64 written_bytes,
                         img::u64 compared_bytes);

}  // namespace ckpt::writer
