#include "unsupported_memory.h"

#include <algorithm>
#include <cstdio>
#include <utility>

namespace ckpt::writer {

namespace {
constexpr const char *kForeignUffd =
    "its pages are served by a userfaultfd in missing or minor mode (a lazy restore still filling it, or the "
    "program's own): pages not yet filled can be neither read nor taken as zero";
}  // namespace

std::string unsupported_memory(const MapEntry &m) {
  // The kernel's own special mappings carry VM_IO|VM_PFNMAP too ([vvar]
  // shows "pf io"); restore maps them anew, so they are not refused.
  const std::string &p = m.path;
  if (p == "[vvar]" || p == "[vvar_vclock]" || p == "[vsyscall]" || p == "[vdso]") return "";
  // VM_IO / VM_PFNMAP: device memory (a framebuffer, a PCI BAR, /dev/mem)
  // inserted by pfn. Reading it may have side effects or fail, and restore
  // could only map the device afresh, not bring back what it held.
  if (m.has_flag("io") || m.has_flag("pf"))
    return "device memory (VM_IO/VM_PFNMAP) cannot be saved or recreated";
  // memfd_secret(2): the kernel removes these pages from its direct map
  // and refuses every foreign read (process_vm_readv and /proc/PID/mem).
  if (p == "/secretmem (deleted)") return "secret memory (memfd_secret) cannot be read from outside the process";
  // io_setup(2) maps the AIO ring from the aio pseudo filesystem; the
  // context id is the ring's address, and restore cannot make io_setup
  // put a new ring there (CRIU remaps it, with no requests in flight).
  if (p == "/[aio] (deleted)") return "AIO context (io_setup) is not supported";
  // MAP_HUGETLB anonymous memory is restored as such; a file on a
  // hugetlbfs mount the process opened itself is not (its pages would have
  // to be kept in a file that may be gone or changed by then).
  // Kernel quirk (mm/userfaultfd.c, fs/userfaultfd.c): a page of a range
  // registered with a userfaultfd in missing (VmFlags "um") or minor ("ui")
  // mode that is not filled yet shows in pagemap as neither present nor
  // swapped, yet it is not zero: a touch waits for the uffd's handler.
  // Here that handler is a lazy restore's helper or the program's own
  // (the dump's tracker registers write-protect only, "uw"). The plan
  // would take such pages as zero, and a snapshot's fork copy loses the
  // registration (its missing pages read as zero); a read through
  // /proc/PID/mem would wait for a handler that may be frozen with the
  // tree. So the dump refuses it (DECISIONS 269).
  if (m.has_flag("um") || m.has_flag("ui")) return kForeignUffd;
  if (m.has_flag("ht") && p != "/anon_hugepage (deleted)")
    return "mappings of hugetlbfs files are not supported (only MAP_HUGETLB anonymous memory)";
  return "";
}

img::Status check_memory_supported(pid_t pid, const std::vector<MapEntry> &maps) {
  // Mappings refused for the same reason are listed together, the reason
  // once (a lazily restored process has every private range served).
  std::vector<std::pair<std::string, std::string>> groups;  // reason, ranges
  for (const MapEntry &m : maps) {
    std::string why = unsupported_memory(m);
    if (why.empty()) continue;
    auto g = std::find_if(groups.begin(), groups.end(), [&](const auto &p) { return p.first == why; });
    if (g == groups.end()) g = groups.insert(groups.end(), {why, ""});
    char range[160];
    std::snprintf(range, sizeof range, "%s%llx-%llx", g->second.empty() ? "" : ", ", (unsigned long long)m.start,
                  (unsigned long long)m.end);
    g->second += range;
    if (!m.path.empty()) g->second += " " + m.path;
  }
  if (groups.empty()) return {};
  std::string offenders;
  for (const auto &[why, ranges] : groups) offenders += (offenders.empty() ? "" : "; ") + ranges + ": " + why;
  // What to do about it, once: a lazy restore finishes by itself (its
  // background copy, then the helper unregisters every range).
  bool uffd = std::any_of(groups.begin(), groups.end(), [](const auto &p) { return p.first == kForeignUffd; });
  if (uffd)
    offenders += "; dump again once it is filled: a lazy restore finishes by itself (its background copy starts "
                 "CKPT_LAZY_BACKGROUND_DELAY_MS, default 100 ms, after the program runs), a program's own handler "
                 "must unregister the range";
  return img::make_error("pid %d: cannot checkpoint mapping %s", pid, offenders.c_str());
}

}  // namespace ckpt::writer
