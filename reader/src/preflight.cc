#include "preflight.h"

#include "mapped_objects.h"

#include <algorithm>

#include <ckpt/img/build_id.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

#include "self_maps.h"

namespace ckpt::reader {

using namespace img;

static Status check_file(const std::string &path, u64 ino, u64 size, i64 mtime_ns, const char *what) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0) return make_error("%s %s: %s", what, path.c_str(), strerror(errno));
  i64 mtime = i64(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (ino && st.st_ino != ino) return make_error("%s %s has been replaced since the dump (inode differs)", what, path.c_str());
  if (size && u64(st.st_size) != size)
    return make_error("%s %s has changed since the dump (size %lld, was %llu)", what, path.c_str(),
                      (long long)st.st_size, (unsigned long long)size);
  if (mtime_ns && mtime != mtime_ns) return make_error("%s %s has been modified since the dump", what, path.c_str());
  return {};
}

static bool pid_in_use(i32 pid) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d", pid);
  struct stat st;
  return stat(path, &st) == 0;
}

Status preflight(const ImageReader &image, const CkptView &v, const CoreView &core) {
  if (v.tasks.records.size() != 1)
    return make_error("the image holds %zu processes; restoring process trees is not supported yet",
                      v.tasks.records.size());
  if (v.parent) return make_error("restoring incremental images is not supported yet; merge the chain first");
  const TaskRecord &task = v.tasks.records[0];

  for (const ThreadRecord &t : v.threads.records)
    if (pid_in_use(t.tid))
      return make_error("%s %d is in use by another process", t.tid == task.pid ? "pid" : "tid", t.tid);

  std::map<std::string, bool> checked;
  for (size_t i = 0; i < v.vmas.records.size(); i++) {
    const VmaRecord &m = v.vmas.records[i];
    auto kind = static_cast<VmaKind>(m.kind);
    bool needs_file = false;
    for (u32 k = 0; k < m.range_count; k++) {
      auto src = static_cast<PageSource>(v.ranges.records[m.first_range + k].source);
      if (src == PageSource::File) needs_file = true;
      if (src == PageSource::Parent) return make_error("the image refers to a parent image");
    }
    if (kind == VmaKind::File && (m.flags & kVmaDeletedFile) == 0 && (needs_file || (m.flags & kVmaShared))) {
      std::string path(v.vmas.str_or_empty(m.path));
      if (checked.count(path)) continue;
      checked[path] = true;
      CKPT_TRY(check_file(path, m.ino, m.file_size, m.file_mtime_ns, "mapped file"));
      auto want_id = v.vmas.blob(m.build_id);
      if (want_id && !want_id->empty()) {
        std::vector<u8> have = read_build_id(path);
        if (have.size() != want_id->size() || !std::equal(have.begin(), have.end(), want_id->begin()))
          return make_error("mapped file %s is not the binary that was dumped (build-id differs)", path.c_str());
      }
    }
    if (m.kind > static_cast<u32>(VmaKind::Hugetlb))
      return make_error("mapping at 0x%llx is of kind %u, which this restore does not know", (unsigned long long)m.start, m.kind);
    if (kind == VmaKind::SysvShm) return make_error("SysV shared memory at 0x%llx is not supported yet", (unsigned long long)m.start);
  }

  for (const FdRecord &f : v.fds.records) {
    auto type = static_cast<FdType>(f.type);
    std::string path(v.fds.str_or_empty(f.path));
    switch (type) {
      case FdType::Regular:
      case FdType::Directory:
        if (!(f.flags & kFdUnlinked)) {
          // The same file, and not shorter: a file that grew (a log) is
          // fine, as it is for CRIU; one that was replaced or truncated is
          // not the file the process had open.
          struct stat st;
          if (stat(path.c_str(), &st) < 0) return make_error("fd %d: %s: %s", f.fd, path.c_str(), strerror(errno));
          if (f.ino && st.st_ino != f.ino)
            return make_error("fd %d: %s has been replaced since the dump (inode differs)", f.fd, path.c_str());
          if (type == FdType::Regular && u64(st.st_size) < f.size)
            return make_error("fd %d: %s is shorter than at the dump (%lld bytes, was %llu)", f.fd, path.c_str(),
                              (long long)st.st_size, (unsigned long long)f.size);
        }
        break;
      case FdType::PipeRead:
      case FdType::PipeWrite:
      case FdType::Fifo:
      case FdType::CharDevice:
        break;
      case FdType::MemFd:
        if (f.content.length == 0 && f.size != 0) return make_error("fd %d: memfd contents were not captured", f.fd);
        break;
      default:
        return make_error("fd %d (%s) is of a kind restore does not support yet", f.fd, path.c_str());
    }
  }
  for (const TimerRecord &t : v.timers.records)
    if (static_cast<TimerKind>(t.kind) == TimerKind::Posix)
      return make_error("POSIX timer %d: restoring POSIX timers is not supported yet", t.timer_id);

  // The kernel's vdso area must have the image's shape: restore moves the
  // current one where the image had it.
  auto self = read_self_maps();
  if (!self) return self.error();
  for (VmaKind k : {VmaKind::Vdso, VmaKind::Vvar, VmaKind::VvarVclock}) {
    const char *name = k == VmaKind::Vdso ? "[vdso]" : k == VmaKind::Vvar ? "[vvar]" : "[vvar_vclock]";
    u64 image_len = 0, here_len = 0;
    for (const VmaRecord &m : v.vmas.records)
      if (static_cast<VmaKind>(m.kind) == k) image_len = m.end - m.start;
    for (const SelfMapping &m : *self)
      if (m.name == name) here_len = m.end - m.start;
    if (image_len != here_len)
      return make_error("%s is %llu bytes here but %llu in the image (a different kernel?)", name,
                        (unsigned long long)here_len, (unsigned long long)image_len);
  }
  for (const VmaRecord &m : v.vmas.records)
    if (m.end > 0x7ffffffff000ull && static_cast<VmaKind>(m.kind) != VmaKind::Vsyscall)
      return make_error("mapping at 0x%llx is above the 47-bit address space", (unsigned long long)m.start);
  if (core.threads.size() != v.threads.records.size()) return make_error("thread notes and records disagree");
  CKPT_TRY(check_huge_pages(v));
  (void)image;
  return {};
}

}  // namespace ckpt::reader
