// Dirty tracking (dirty_tracking.h): finding the tracker, reading what it
// saw, and the image's record of it. Arming is dirty_tracking_arm.cc's.
#include "dirty_tracking.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pagemap_scan.h"

namespace ckpt::writer {

using namespace img;

static bool overlaps(const std::vector<AddressRange> &set, u64 start, u64 end) {
  auto it = std::partition_point(set.begin(), set.end(), [&](const AddressRange &r) { return r.end <= start; });
  return it != set.end() && it->start < end;
}

bool WrittenPages::covers(u64 start, u64 end) const {
  auto it = std::partition_point(tracked.begin(), tracked.end(), [&](const AddressRange &r) { return r.end <= start; });
  return it != tracked.end() && it->start <= start && it->end >= end;
}

bool WrittenPages::clean(u64 start, u64 end) const { return !overlaps(written, start, end); }

Expected<int> epoch_fd_copy(pid_t pid, int fd) {
  int pidfd = int(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return make_error("pidfd_open(%d): %s", pid, strerror(errno));
  int mine = int(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
  int e = errno;
  close(pidfd);
  if (mine < 0) return make_error("pidfd_getfd(%d, %d): %s", pid, fd, strerror(e));
  return mine;
}

// The epoch memfd's contents, read through a copy of the target's fd;
// zeros when it cannot be read.
static TrackerEpoch read_epoch(pid_t pid, int fd) {
  TrackerEpoch e{};
  auto mine = epoch_fd_copy(pid, fd);
  if (!mine) return e;
  if (pread(*mine, &e, sizeof e, 0) != ssize_t(sizeof e)) e = TrackerEpoch{};
  close(*mine);
  return e;
}

bool tracker_kind(const std::string &link) {
  // fs/userfaultfd.c's anon inode; kTrackerEpochName's memfd.
  return link == "anon_inode:[userfaultfd]" || link == std::string("/memfd:") + kTrackerEpochName + " (deleted)";
}

TrackerFd take_tracker_fd(pid_t pid, FdTable &table) {
  TrackerFd found;
  const std::string epoch_path = std::string("/memfd:") + kTrackerEpochName;
  for (auto it = table.fds.begin(); it != table.fds.end();) {
    // Ours: a userfaultfd (and a memfd of our name) with O_APPEND, a flag
    // that means nothing to a userfaultfd and that no program sets on
    // them (dirty_tracking_arm.cc).
    bool marked = it->record.open_flags & O_APPEND;
    if (marked && found.fd < 0 && it->path == "anon_inode:[userfaultfd]") {
      found.fd = it->record.fd;
      found.ino = it->record.ino;
    } else if (marked && found.epoch_fd < 0 && it->path == epoch_path) {
      found.epoch_fd = it->record.fd;
    } else {
      ++it;
      continue;
    }
    it = table.fds.erase(it);
  }
  if (found.epoch_fd >= 0) found.epoch = read_epoch(pid, found.epoch_fd);
  return found;
}

bool tracker_continues(const ProcessCapture &pc, const TrackerFd &old) {
  const TrackerEpoch &e = old.epoch;
  return old.fd >= 0 && old.epoch_fd >= 0 && e.magic == kTrackerEpochMagic && e.pid == pc.pid &&
         e.start_time == pc.stat.start_time && e.tracker_ino == old.ino;
}

Status read_boot_id(u8 (&out)[16]) {
  // boot_id: "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx\n".
  char text[64] = {};
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("/proc/sys/kernel/random/boot_id: %s", strerror(errno));
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  size_t k = 0;
  for (ssize_t i = 0; i + 1 < n && k < 16; i++) {
    if (text[i] == '-') continue;
    unsigned byte = 0;
    if (std::sscanf(text + i, "%2x", &byte) != 1) break;
    out[k++] = static_cast<u8>(byte);
    i++;
  }
  if (k != 16) return make_error("/proc/sys/kernel/random/boot_id: not a UUID");
  return {};
}

TrackingIdentity identity_of(const ProcessCapture &pc) {
  TrackingIdentity id;
  id.pid = pc.pid;
  std::memcpy(id.boot_id, pc.boot_id, sizeof id.boot_id);
  id.start_time = pc.stat.start_time;
  return id;
}

int scan_written(int pagemap, u64 start, u64 end, bool write_protect, std::vector<AddressRange> *written) {
  return pagemap_scan_walk(pagemap, start, end, kPmScanCheckWpAsync | (write_protect ? kPmScanWpMatching : 0),
                           kPageIsWritten, [&](const PageRegion &region) {
                             if (!written) return;
                             if (!written->empty() && written->back().end == region.start)
                               written->back().end = region.end;
                             else
                               written->push_back({region.start, region.end});
                           });
}

Expected<WrittenPages> read_written_pages(const ProcessCapture &pc, const TrackerFd &tracker,
                                          const ImageReader &parent, const u8 (&parent_id)[16], std::string &why) {
  WrittenPages out;
  auto table = read_dirty_tracking(parent);
  if (!table) return table.error().context("the parent image");
  if (!*table || (*table)->records.empty() || (*table)->records[0].tracker_ino == 0) {
    why = "the parent image armed no tracker";
    return out;
  }
  const DirtyTrackingRecord &rec = (*table)->records[0];
  if (tracker.fd < 0) {
    why = "no tracker in the process (closed, or the process exec'd or was restored)";
    return out;
  }
  if (tracker.ino != rec.tracker_ino) {
    why = "the tracker is not the parent's (another dump re-armed it since)";
    return out;
  }
  // The same tracker, reset by a later dump than PREV (its epoch names
  // that dump, even one that failed): what it saw starts there. A tracker
  // without an epoch (closed by the program, or an older writer's) cannot
  // say, so it is not trusted either.
  if (!tracker_continues(pc, tracker) || std::memcmp(tracker.epoch.image_id, parent_id, 16) != 0) {
    why = "the tracker is not the parent's (another dump reset it since)";
    return out;
  }
  TrackingIdentity id = identity_of(pc);
  if (std::memcmp(id.boot_id, rec.boot_id, 16) != 0 || id.pid != rec.pid || id.start_time != rec.start_time) {
    why = "the parent image is of another process";
    return out;
  }
  std::vector<AddressRange> armed;
  for (auto [start, end] : armed_ranges(**table, rec)) armed.push_back({start, end});
  // Tracked: armed at the parent's dump and still registered (VmFlags
  // "uw"). A VMA made since (mmap, or moved by mremap, which drops its
  // registration without UFFD_FEATURE_EVENT_REMAP) is not "uw".
  std::vector<AddressRange> candidates;
  for (const MapEntry &m : pc.maps) {
    if (!m.has_flag("uw")) continue;
    for (const AddressRange &a : armed) {
      u64 s = std::max(a.start, m.start), e = std::min(a.end, m.end);
      if (s < e) candidates.push_back({s, e});
    }
  }
  std::string path = "/proc/" + std::to_string(pc.pid) + "/pagemap";
  int pagemap = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) return make_error("%s: %s", path.c_str(), strerror(errno));
  for (const AddressRange &c : candidates) {
    std::vector<AddressRange> written;
    // EPERM (PM_SCAN_CHECK_WPASYNC): not async-wp registered after all
    // (the program's own userfaultfd): compared instead.
    if (scan_written(pagemap, c.start, c.end, false, &written) != 0) continue;
    if (!out.tracked.empty() && out.tracked.back().end == c.start)
      out.tracked.back().end = c.end;
    else
      out.tracked.push_back(c);
    for (const AddressRange &w : written) {
      if (!out.written.empty() && out.written.back().end == w.start)
        out.written.back().end = w.end;
      else
        out.written.push_back(w);
    }
  }
  close(pagemap);
  if (out.tracked.empty()) why = "no range the parent armed is still tracked";
  return out;
}

void add_tracking_record(TableBuilder<DirtyTrackingRecord> &table, const ProcessCapture &pc,
                         const ArmedTracker &armed, u32 flags, u64 tracked_bytes, u64 written_bytes,
                         u64 compared_bytes) {
  DirtyTrackingRecord r{};
  r.pid = pc.pid;
  if (armed.ino) {
    TrackingIdentity id = identity_of(pc);
    std::memcpy(r.boot_id, id.boot_id, 16);
    r.start_time = id.start_time;
    r.tracker_ino = armed.ino;
  }
  r.flags = flags;
  r.tracked_bytes = tracked_bytes;
  r.written_bytes = written_bytes;
  r.compared_bytes = compared_bytes;
  if (r.tracker_ino && !armed.ranges.empty())
    r.armed = table.add_blob({reinterpret_cast<const u8 *>(armed.ranges.data()), armed.ranges.size() * 16});
  table.add(r);
}

}  // namespace ckpt::writer
