#include "process_settings.h"

#include "dump_guard.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ckpt/img/cgroups.h>
#include <ckpt/img/records.h>

#include "inject.h"
#include "procfs.h"

namespace ckpt::writer {

using namespace img;

// linux/membarrier.h of older headers lacks it (Linux 6.3+).
constexpr long kMembarrierGetRegistrations = 1 << 9;
// linux/prctl.h of older headers lacks it (Linux 6.18+): a
// PR_GET_THP_DISABLE result with this bit disabled THP except where
// MADV_HUGEPAGE asked for it.
constexpr long kThpDisableExceptAdvised = 1 << 1;

static Expected<long> read_proc_number(pid_t pid, const char *name) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  auto text = read_file(path);
  if (!text) return text.error();
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(text->c_str(), &end, 10);
  if (errno || end == text->c_str()) return make_error("%s: not a number: \"%s\"", path.c_str(), text->c_str());
  return static_cast<long>(v);
}

// The settings of each cgroup the process is in other than a hierarchy's
// root (which restore never has to make), so that restore can make one
// that is gone by then (decision 120). Files a cgroup lacks (controllers
// not enabled there) are left out.
static std::string capture_cgroup_settings(const std::string &cgroup_text) {
  std::vector<CgroupSetting> settings;
  for (const CgroupLine &line : parse_cgroups(cgroup_text)) {
    if (line.path == "/") continue;
    auto dir = cgroup_directory(line.controllers, line.path);
    if (!dir) continue;
    for (const std::string &file : cgroup_setting_files()) {
      auto value = read_file(*dir + "/" + file);
      if (!value) continue;
      std::string v = value.take();
      while (!v.empty() && v.back() == '\n') v.pop_back();
      settings.push_back({line.controllers, file, v});
    }
  }
  return cgroup_settings_text(settings);
}

// VmLck of /proc/PID/status, in kB (mm->locked_vm).
static Expected<u64> locked_kb(pid_t pid) {
  auto status = read_status(pid);
  if (!status) return status.error();
  if (!status->vm_lck_kb) return make_error("/proc/%d/status has no VmLck", pid);
  return *status->vm_lck_kb;
}

Expected<ProcessSettings> capture_process_settings(pid_t pid, Injector &inj) {
  ProcessSettings out;
  out.settings = kTaskSettingsCaptured;
  auto adj = read_proc_number(pid, "oom_score_adj");
  if (!adj) return adj.error();
  out.oom_score_adj = static_cast<i32>(*adj);
  // Absent without CONFIG_AUDIT: then every process's is unset.
  std::string loginuid_path = "/proc/" + std::to_string(pid) + "/loginuid";
  if (access(loginuid_path.c_str(), F_OK) == 0) {
    auto uid = read_proc_number(pid, "loginuid");
    if (!uid) return uid.error();
    out.loginuid = static_cast<u32>(*uid);
  }

  auto cgroup = read_file("/proc/" + std::to_string(pid) + "/cgroup");
  if (!cgroup) return cgroup.error();
  out.cgroup = cgroup.take();
  out.cgroup_settings = capture_cgroup_settings(out.cgroup);

  // The subreaper bit is in the signal struct and no /proc file shows it.
  int subreaper = 0;
  auto r = inj.call_out(SYS_prctl, {PR_GET_CHILD_SUBREAPER, 0, 0, 0, 0}, 1, &subreaper, sizeof subreaper);
  if (!r) return r.error();
  if (*r < 0) return make_error("prctl(PR_GET_CHILD_SUBREAPER) in process %d failed: %s", pid, strerror(-*r));
  if (subreaper) out.settings |= kTaskChildSubreaper;

  auto thp = inj.call(SYS_prctl, {PR_GET_THP_DISABLE, 0, 0, 0, 0});
  if (!thp) return thp.error();
  if (*thp < 0) return make_error("prctl(PR_GET_THP_DISABLE) in process %d failed: %s", pid, strerror(-*thp));
  if (*thp & 1) out.settings |= kTaskThpDisabled;
  if (*thp & kThpDisableExceptAdvised) out.settings |= kTaskThpExceptAdvised;

  // mlockall(MCL_FUTURE) sets mm->def_flags, which no /proc file shows;
  // a mapping made now shows it in its smaps VmFlags ("lo", "lf" for
  // MCL_ONFAULT). The probe is shared anonymous memory (shmem never merges
  // with a neighbour) and PROT_NONE (nothing is faulted in), unmapped at
  // once; the memory plan was read before it.
  // Journalled first: a dumper killed before the munmap leaves the page to
  // the dump guard, which unmaps it (dump_guard.h).
  // smaps walks every page table of the process (tens of ms per GiB, all
  // inside the freeze), so it is read only when the probe was locked:
  // a VM_LOCKED mapping adds its size to mm->locked_vm (VmLck in status)
  // as mmap makes it, MCL_ONFAULT's too, so an unchanged VmLck says
  // neither is in effect.
  auto locked_before = locked_kb(pid);
  if (DumpGuard *guard = DumpGuard::active()) guard->probing(pid);
  auto probe = inj.call(SYS_mmap, {0, kPageSize, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS, ~u64(0), 0});
  if (!probe) return probe.error();
  // A locked mapping beyond RLIMIT_MEMLOCK: only MCL_FUTURE locks it.
  if (*probe == -EAGAIN)
    return make_error("process %d: cannot tell whether mlockall(MCL_FUTURE) is in effect: its locked memory is at RLIMIT_MEMLOCK", pid);
  if (*probe < 0 && *probe > -4096)
    return make_error("mmap of a probe page in process %d failed: %s", pid, strerror(int(-*probe)));
  auto locked_after = locked_kb(pid);
  bool maybe_locked = !locked_before || !locked_after || *locked_after != *locked_before;
  auto maps = maybe_locked ? read_maps(pid) : Expected<std::vector<MapEntry>>(std::vector<MapEntry>{});
  auto unmapped = inj.call(SYS_munmap, {u64(*probe), kPageSize});
  if (!maps) return maps.error();
  if (!unmapped) return unmapped.error();
  for (const MapEntry &m : *maps) {
    if (m.start != u64(*probe)) continue;
    if (m.has_flag("lo")) out.settings |= kTaskMlockFuture;
    if (m.has_flag("lf")) out.settings |= kTaskMlockFuture | kTaskMlockFutureOnFault;
  }

  // The registrations are in mm->membarrier_state, which no /proc file
  // shows; MEMBARRIER_CMD_GET_REGISTRATIONS (6.3+) asks the process. An
  // older kernel cannot tell: EINVAL reads as none registered
  // (docs/DECISIONS.md).
  auto mb = inj.call(SYS_membarrier, {kMembarrierGetRegistrations, 0, 0});
  if (!mb) return mb.error();
  if (*mb >= 0) out.membarrier = static_cast<u32>(*mb);
  else if (*mb != -EINVAL && *mb != -ENOSYS)
    return make_error("membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS) in process %d failed: %s", pid, strerror(-*mb));
  return out;
}

}  // namespace ckpt::writer
