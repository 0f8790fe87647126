#include "preflight.h"

#include "mapped_objects.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ckpt/img/build_id.h>
#include <ckpt/img/restorable.h>
#include <ckpt/reader/validate.h>

#include "fd_kinds/fd_kind.h"
#include "phase_times.h"
#include "pidns.h"
#include "privileges.h"
#include "proc_stat.h"
#include "self_maps.h"
#include "stored_files.h"
#include "sysv_ipc.h"
#include "tree_plan.h"
#include "vdso_check.h"

namespace ckpt::reader {

using namespace img;

// CAP_CHECKPOINT_RESTORE (Linux 5.9), spelled out for older headers.
constexpr unsigned kCapCheckpointRestore = 40;

static Status check_file(const std::string &path, u64 ino, u64 size, i64 mtime_ns, const char *what) {
  struct stat st;
  if (stat(path.c_str(), &st) < 0) {
    // Files in memory file systems are often removed between a dump and a
    // restore; the dump can keep them.
    const char *hint = errno == ENOENT ? " (imgtool dump --store-tmpfs-files keeps files of tmpfs in the image)" : "";
    return make_error("%s %s: %s%s", what, path.c_str(), strerror(errno), hint);
  }
  i64 mtime = i64(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (ino && st.st_ino != ino) return make_error("%s %s has been replaced since the dump (inode differs)", what, path.c_str());
  if (size && u64(st.st_size) != size)
    return make_error("%s %s has changed since the dump (size %lld, was %llu)", what, path.c_str(),
                      (long long)st.st_size, (unsigned long long)size);
  if (mtime_ns && mtime != mtime_ns) return make_error("%s %s has been modified since the dump", what, path.c_str());
  return {};
}

// A zombie frees its pid as soon as its parent reaps it. `dump --kill -o -
// | restore -` on one host reaches this check the moment the dump ends,
// while the killed process's parent has yet to reap it (on its SIGCHLD,
// asynchronously): a zombie gets a bounded moment before its pid counts
// as taken. So does a task on its way out. Kernel quirk: a task being
// released after its reap shows as 'X' (EXIT_DEAD) until release_task
// frees its pid, and one still in do_exit has PF_EXITING (0x4) in its
// flags (the stat's 9th field) with any state letter; seen as "pid N is
// in use by another process (exited since)" in 1 of 40 piped restores at
// load 7.
static bool pid_in_use(i32 pid) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d", pid);
  for (int waited_ms = 0;; waited_ms += 5) {
    auto head = read_stat_head(pid);
    if (!head) return access(path, F_OK) == 0 || errno != ENOENT;  // gone: free
    bool leaving = head->state == 'Z' || head->state == 'X' || (head->flags & 0x4);  // PF_EXITING
    if (!leaving || waited_ms >= 2000) return true;
    usleep(5000);
  }
}

// One line of /proc/PID/status ("Tgid:\t123" gives "123"), or "".
static std::string status_field(i32 pid, const char *field) {
  std::string text;
  char path[48];
  std::snprintf(path, sizeof path, "/proc/%d/status", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, n);
  close(fd);
  text.insert(0, "\n");
  std::string key = "\n" + std::string(field) + ":";
  size_t at = text.find(key);
  if (at == std::string::npos) return "";
  size_t start = text.find_first_not_of(" \t", at + key.size());
  size_t end = text.find('\n', at + 1);
  return start == std::string::npos || start > end ? "" : text.substr(start, end - start);
}

std::string pid_taken_message(i32 pid, bool thread) {
  // The owner: its command name, and the process it is a thread of when it
  // is not a process of its own (a tid taken by another program's thread).
  std::string owner = status_field(pid, "Name");
  std::string tgid = status_field(pid, "Tgid");
  if (owner.empty()) owner = "exited since";
  else if (!tgid.empty() && tgid != std::to_string(pid)) owner += ", a thread of pid " + tgid;
  return std::string(thread ? "tid " : "pid ") + std::to_string(pid) + " is in use by another process (" + owner +
         "); 'restore --pidns' restores into a new pid namespace";
}

// Which part of the mapped files' check to make: their inode, size and
// mtime (a stat each), their build-ids (an open and a pread each, most of
// the ~0.2 ms for python3's 15 files; restore makes that part beside its
// child's start, check_files_and_vdso), or both.
enum class MappedFileCheck { All, StatOnly, BuildIdsOnly };

// recreated: files restore has made again from the image since the
// preflight found them gone (stored_files.h), checked then.
static Status check_mapped_files(const CkptView &v, MappedFileCheck what = MappedFileCheck::All,
                                 const std::vector<std::string> *recreated = nullptr) {
  std::map<std::string, bool> checked;
  for (const VmaRecord &m : v.vmas.records) {
    if (static_cast<VmaKind>(m.kind) != VmaKind::File || (m.flags & kVmaDeletedFile)) continue;
    bool needs_file = (m.flags & kVmaShared) != 0;
    for (u32 k = 0; k < m.range_count; k++)
      if (static_cast<PageSource>(v.ranges.records[m.first_range + k].source) == PageSource::File) needs_file = true;
    if (!needs_file) continue;
    std::string path(v.vmas.str_or_empty(m.path));
    if (checked.count(path)) continue;
    checked[path] = true;
    if (gone_but_stored(v, path, m.ino)) continue;
    if (recreated && std::find(recreated->begin(), recreated->end(), path) != recreated->end()) continue;
    if (what != MappedFileCheck::BuildIdsOnly)
      CKPT_TRY(check_file(path, m.ino, m.file_size, m.file_mtime_ns, "mapped file"));
    if (what == MappedFileCheck::StatOnly) continue;
    auto want_id = v.vmas.blob(m.build_id);
    if (want_id && !want_id->empty()) {
      std::vector<u8> have = read_build_id(path);
      if (have.size() != want_id->size() || !std::equal(have.begin(), have.end(), want_id->begin()))
        return make_error("mapped file %s is not the binary that was dumped (build-id differs)", path.c_str());
    }
  }
  return {};
}

// What each fd needs from this machine: its kind's check (fd_kinds/).
static Status check_fd_files(const CkptView &v, const HereNowOptions &opt) {
  for (const FdRecord &f : v.fds.records) {
    const ReaderFdKind *kind = reader_fd_kind(f.type);
    if (!kind) return make_error("fd %d: of an unknown kind %u", f.fd, f.type);
    CKPT_TRY(kind->check_here(v, f, opt));
  }
  return {};
}

// The kernel's vdso area must have the image's shape: restore moves the
// current one where the image had it.
static Status check_vdso(const CkptView &v, const std::vector<SelfMapping> &self) {
  for (VmaKind k : {VmaKind::Vdso, VmaKind::Vvar, VmaKind::VvarVclock}) {
    const char *name = k == VmaKind::Vdso ? "[vdso]" : k == VmaKind::Vvar ? "[vvar]" : "[vvar_vclock]";
    u64 image_len = 0, here_len = 0;
    for (const VmaRecord &m : v.vmas.records)
      if (static_cast<VmaKind>(m.kind) == k) image_len = m.end - m.start;
    for (const SelfMapping &m : self)
      if (m.name == name) here_len = m.end - m.start;
    if (image_len != here_len)
      return make_error("%s is %llu bytes here but %llu in the image (a different kernel?)", name,
                        (unsigned long long)here_len, (unsigned long long)image_len);
  }
  return {};
}

static Status check_vdso_here(const ImageReader &image, const CkptView &v) {
  // One read of our maps for both vdso checks (decision 235).
  auto self = read_self_maps();
  if (!self) return self.error();
  CKPT_TRY(check_vdso(v, *self));
  CKPT_TRY(check_vdso_matches(image, v, *self));
  trace_phase("check: vdso");
  return {};
}

Error not_permitted_to_restore() {
  return make_error("not permitted: user %u may not restore processes (recreating their pids needs root, "
                    "CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)",
                    static_cast<unsigned>(geteuid()));
}

// clone3's set_tid is allowed with CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN
// over the pid namespace (checkpoint_restore_ns_capable() in the kernel).
Status check_restore_privilege() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) < 0) return {};  // cannot tell: clone3 decides
  auto has = [&](unsigned cap) { return (data[cap / 32].effective >> (cap % 32)) & 1; };
  if (has(CAP_SYS_ADMIN) || has(kCapCheckpointRestore)) return {};
  return not_permitted_to_restore();
}

Status check_here_now(const ImageReader &image, const CkptView &v, const HereNowOptions &opt, bool skip_file_checks) {
  // Who restores matters as much as where: verify and info say so too.
  // (restore --pidns unprivileged gets the privilege from a user namespace
  // of its own, pidns.h.)
  if (!own_user_namespace_planned()) CKPT_TRY(check_restore_privilege());
  u64 need = v.identity.xsave_features, have = host_xsave_features();
  if (need & ~have)
    return make_error("this CPU lacks XSAVE features 0x%llx that the image uses (image 0x%llx, CPU 0x%llx)",
                      (unsigned long long)(need & ~have), (unsigned long long)need, (unsigned long long)have);
  // In a new pid namespace (restore --pidns) every pid is free.
  for (const TaskRecord &t : v.tasks.records)
    if (!opt.new_pid_namespace && pid_in_use(t.pid)) return Error(pid_taken_message(t.pid, false));
  for (const ThreadRecord &t : v.threads.records)
    if (!opt.new_pid_namespace && pid_in_use(t.tid)) return Error(pid_taken_message(t.tid, true));
  trace_phase("check: pids free");
  CKPT_TRY(check_mapped_files(v, skip_file_checks ? MappedFileCheck::StatOnly : MappedFileCheck::All));
  trace_phase(skip_file_checks ? "check: mapped files (stat)" : "check: mapped files (build-ids)");
  CKPT_TRY(check_fd_files(v, opt));
  for (const TaskRecord &t : v.tasks.records) {
    std::string cwd(v.tasks.str_or_empty(t.cwd));
    struct stat st;
    if (stat(cwd.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
      return make_error("the working directory %s of pid %d is gone", cwd.c_str(), t.pid);
  }
  if (!skip_file_checks) CKPT_TRY(check_vdso_here(image, v));
  CKPT_TRY(check_huge_pages(v));
  CKPT_TRY(check_sysv_ipc_here(v));
  return check_privileges_here(v);
}

Status check_files_and_vdso(const ImageReader &image, const CkptView &v, const std::vector<std::string> &recreated) {
  Status s = check_mapped_files(v, MappedFileCheck::BuildIdsOnly, &recreated);
  if (s) {
    trace_phase("check: mapped files (build-ids)");
    s = check_vdso_here(image, v);
  }
  if (!s) return make_error("not restorable here now: %s", s.error().message().c_str());
  return {};
}

Restorability check_restorable(const std::string &path, bool check_memory, const HereNowOptions &opt) {
  auto image = ImageReader::open(path);
  if (!image) {
    Restorability r;
    r.obstacle = Obstacle::Damaged;
    r.message = image.error().message();
    return r;
  }
  DecodedImage decoded;
  return check_restorable_opened(path, *image, check_memory, opt, decoded);
}

Restorability check_restorable_opened(const std::string &path, const ImageReader &image, bool check_memory,
                                      const HereNowOptions &opt, DecodedImage &decoded, bool leave_file_checks) {
  Restorability r;
  auto report = validate_chain(path, &image, check_memory, decoded.view, decoded.core);
  if (!report) {
    r.obstacle = Obstacle::Damaged;
    r.message = report.error().message();
    return r;
  }
  r.report = report.take();
  trace_phase("check: image validated");
  const CkptView &view = *decoded.view;
  std::string lacks = unsupported_message(unsupported_state(view));
  if (lacks.empty() && !(view.identity.flags & kIdentityRestorable))
    lacks = "the image was written without the state a restore needs";
  if (!lacks.empty()) {
    r.obstacle = Obstacle::Unsupported;
    r.message = "not restorable: " + lacks;
    return r;
  }
  // A tree's processes are made one by the other: their checks stay here.
  decoded.file_checks_left = leave_file_checks && view.tree.records.empty();
  Status here = check_here_now(image, view, opt, decoded.file_checks_left);
  if (!here) {
    r.obstacle = Obstacle::NotHereNow;
    r.message = "not restorable here now: " + here.error().message();
    return r;
  }
  // A tree: every further process is checked like the root.
  if (!view.tree.records.empty()) {
    auto plan = plan_tree(path, image, view, *decoded.core);
    if (!plan) {
      r.obstacle = Obstacle::Damaged;
      r.message = plan.error().message();
      return r;
    }
    decoded.tree.emplace(plan.take());
    for (size_t i = 1; i < decoded.tree->processes.size(); i++) {
      const TreeProcess &p = decoded.tree->processes[i];
      std::string who = "process " + std::to_string(p.pid) + ": ";
      if (p.zombie) {
        if (!opt.new_pid_namespace && pid_in_use(p.pid)) {
          r.obstacle = Obstacle::NotHereNow;
          r.message = "not restorable here now: " + pid_taken_message(p.pid, false);
          return r;
        }
        continue;
      }
      std::string lacks_here = unsupported_message(unsupported_state(*p.view));
      if (!lacks_here.empty()) {
        r.obstacle = Obstacle::Unsupported;
        r.message = "not restorable: " + lacks_here;
        return r;
      }
      if (Status s = check_here_now(*p.image, *p.view, opt); !s) {
        r.obstacle = Obstacle::NotHereNow;
        r.message = "not restorable here now: " + s.error().message();
        return r;
      }
    }
  }
  return r;
}

}  // namespace ckpt::reader
