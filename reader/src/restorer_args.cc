// Laying out the restorer region (restorer_args.h).
#include "restorer_args.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ckpt/img/assert.h>
#include <ckpt/img/xstate.h>

#include "arg_arena.h"
#include "fd_kinds/fd_kind.h"
#include "fill_checks.h"
#include "lazy_pages.h"
#include "mapped_objects.h"
#include "page_cache.h"
#include "phase_times.h"
#include "pidns.h"
#include "privileges.h"
#include "proc_stat.h"
#include "self_maps.h"
#include "sigframe.h"

extern "C" const unsigned char ckpt_restorer_blob[];
extern "C" const unsigned char ckpt_restorer_blob_end[];

namespace ckpt::reader {

using namespace img;

namespace {

constexpr u64 kThreadStack = 64 * 1024;
u64 page_up(u64 v) { return (v + kPageSize - 1) & ~(kPageSize - 1); }

bool is_vdso_area(const std::string &name) { return name == "[vdso]" || name == "[vvar]" || name == "[vvar_vclock]"; }

// A free range of `len` bytes that overlaps neither our mappings nor the
// image's: the restorer must survive the unmapping and not be mapped over.
Expected<u64> find_free_range(const CkptView &v, const std::vector<SelfMapping> &self, u64 len) {
  std::vector<std::pair<u64, u64>> used;
  for (const SelfMapping &m : self) used.push_back({m.start, m.end});
  for (const VmaRecord &m : v.vmas.records) used.push_back({m.start, m.end});
  std::sort(used.begin(), used.end());
  u64 top = 0x7ff000000000ull;
  // Walk down from the top of the usual mmap area.
  for (auto it = used.rbegin(); it != used.rend(); ++it) {
    if (it->first >= top) {
      top = std::min(top, it->first);
      continue;
    }
    if (it->second <= top && top - it->second >= len + 2 * kPageSize) return (top - len - kPageSize) & ~(kPageSize - 1);
    top = std::min(top, it->first);
  }
  if (top > 0x10000000ull + len + kPageSize) return (top - len - kPageSize) & ~(kPageSize - 1);
  return make_error("no free address range of %llu bytes for the restorer", (unsigned long long)len);
}

u32 map_flags_of(const VmaRecord &m) {
  u32 f = (m.flags & kVmaShared) ? MAP_SHARED : MAP_PRIVATE;
  if (m.flags & kVmaGrowsDown) f |= MAP_GROWSDOWN;
  if (m.flags & kVmaNoReserve) f |= MAP_NORESERVE;
  // Private hugetlb memory is made anew by the restorer; shared hugetlb
  // memory is mapped from its object (prepare_shared_objects).
  if (static_cast<VmaKind>(m.kind) == VmaKind::Hugetlb && !(m.flags & kVmaShared)) f |= hugetlb_mmap_flags(m.page_size);
  return f;
}

// Whether the restored private mapping is to be charged to commit as the
// original was (kVmaAccount, format minor 9, decision 237). Shared and
// hugetlb mappings are never charged this way, and SysV attaches are not
// mmaps; an older image says nothing, and restore maps as before.
u32 account_of(const CkptView &v, const VmaRecord &m) {
  auto kind = static_cast<VmaKind>(m.kind);
  if ((m.flags & kVmaShared) || kind == VmaKind::Hugetlb || kind == VmaKind::SysvShm || v.identity.format_minor < 9)
    return RS_ACCOUNT_AS_MAPPED;
  return (m.flags & kVmaAccount) ? RS_ACCOUNT_YES : RS_ACCOUNT_NO;
}

u32 madvise_of(const VmaRecord &m) {
  return ((m.flags & kVmaDontDump) ? RS_MADV_DONTDUMP : 0) | ((m.flags & kVmaHugePage) ? RS_MADV_HUGEPAGE : 0) |
         ((m.flags & kVmaNoHugePage) ? RS_MADV_NOHUGEPAGE : 0) | ((m.flags & kVmaDontFork) ? RS_MADV_DONTFORK : 0) |
         ((m.flags & kVmaWipeOnFork) ? RS_MADV_WIPEONFORK : 0);
}

// Everything the layout reads, gathered once.
struct LayoutInputs {
  const ImageReader &image;
  const CkptView &v;
  const CoreView &core;
  const RestorerFds &fds;
  const std::vector<SelfMapping> &self;
  const OwnPrivileges &own;
  u64 region_start, region_len, stacks, scratch;
  /// Which checksum each fill is part of: planned in the first layout pass
  /// that gets that far, the same for every later one (the fills do not
  /// depend on where the region lies).
  std::optional<FillChecks> *checks;
};

// Two fillers (decision 248): a second thread of the restorer shares the
// fills of at least kPairMin bytes when there are kPairTotal of them, the
// restore is of one process (RestorerFds::one_process) and this process
// may run on two CPUs or more. CKPT_RESTORE_FILL "one" keeps one filler;
// "two" and "second" (tests) ask for the pair whatever the sizes and CPUs;
// "busy" (tests) takes no CPU as free, so only a cold image pairs.
// The shorter fills go through the queue (decision 267) when they total
// kQueueTotal: a warm start's private file pages (python3 ~1.9 MiB).
constexpr u64 kPairMin = 4ull << 20;
constexpr u64 kPairTotal = 32ull << 20;
constexpr u64 kQueueTotal = 1ull << 20;

// Whether /proc/PID/stat shows PID running ('R').
bool running_now(pid_t pid) {
  auto head = read_stat_head(pid);
  return head && head->state == 'R';
}

// Our parent and its other children (the lazy helper, its guard) that are
// running now.
int running_relatives() {
  pid_t parent = getppid(), self = getpid();
  int n = running_now(parent) ? 1 : 0;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task/%d/children", parent, parent);
  if (FILE *f = std::fopen(path, "re")) {
    int child;
    while (std::fscanf(f, "%d", &child) == 1)
      if (child != self && running_now(child)) n++;
    std::fclose(f);
  }
  return n;
}

Status choose_fillers(const LayoutInputs &in, rs_args &a, const std::vector<bool> &forced_vma) {
  a.fillers = 1;
  a.pair_min = kPairMin;
  a.filler_stack_top = in.stacks + (in.v.threads.records.size() + 1) * kThreadStack;
  const bool asked = (a.fill_flags & RS_FILL_PAIR_REQUIRED) != 0;
  if ((a.fill_flags & RS_FILL_ONE) || !in.fds.one_process || (a.fill_flags & RS_FILL_VIA_SCRATCH)) return {};
  if (asked) a.pair_min = 2 * RS_FILL_SLICE;  // the "split" test image's fills are short
  // The fills the pair would share as jobs: (file offset, length) of
  // each; and the bytes of the shorter ones, for the queue.
  std::vector<std::pair<u64, u64>> ranges;
  u64 shared = 0, queued = 0;
  for (u32 i = 0; i < a.nvma; i++) {
    if (forced_vma[i]) continue;
    for (u32 k = 0; k < a.vma[i].nfill; k++)
      if (const rs_fill &f = a.fill[a.vma[i].first_fill + k]; f.len >= a.pair_min) {
        ranges.emplace_back(f.file_offset, f.len);
        shared += f.len;
      } else {
        queued += f.len;
      }
  }
  auto engage = [&] {
    a.fillers = 2;
    if (tracing_times())
      trace_phasef("restorer: two fillers (%llu KiB in long fills, %llu KiB queued)",
                   (unsigned long long)(shared >> 10), (unsigned long long)(queued >> 10));
    return Status{};
  };
  if (asked) return engage();
  // The cheap test first: a small image reads nothing.
  if (shared < kPairTotal && queued < kQueueTotal) return {};
  cpu_set_t cpus;
  if (sched_getaffinity(0, sizeof cpus, &cpus) != 0 || CPU_COUNT(&cpus) < 2) return {};
  // Only with a CPU free now: the tasks running this instant (the fourth
  // field of /proc/loadavg, "running/total", ourselves included) leave
  // one for the second filler. On a busy machine it would only queue for
  // a CPU and add the two fillers' contention in the fault path (+15 %
  // CPU measured, decision 248).
  // Our own relatives running now do not count: imgtool (or the
  // launcher), our parent, forks the lazy helper and its guard while we
  // lay out, and those three go idle before the fills begin (imgtool waits
  // for the verdict, the helper for its go). Counted, they kept a quiet
  // two-CPU machine from ever pairing a warm start's fills.
  bool cpu_free = true;
  if (FILE *f = std::fopen("/proc/loadavg", "re")) {
    double l1, l5, l15;
    int running = 0, total = 0;
    int got = std::fscanf(f, "%lf %lf %lf %d/%d", &l1, &l5, &l15, &running, &total);
    std::fclose(f);
    cpu_free = !(got == 5 && running - running_relatives() > CPU_COUNT(&cpus) - 1);
  }
  if (a.fill_flags & RS_FILL_ASSUME_BUSY) cpu_free = false;
  // From a cold page cache the pair is asked for even without a free CPU
  // (decision 257): each filler then spends most of its time waiting for
  // its pread's pages to come from the disk, and a second reader keeps a
  // second read in flight where one filler would wait, hash and populate
  // with the disk idle. Cold: most of kColdSamples pages spread over the
  // shared fills are not in the page cache.
  if (!cpu_free) {
    // The queue's many short fills alone: not worth a thread that would
    // wait for a CPU.
    if (shared < kPairTotal) return {};
    constexpr unsigned kColdSamples = 16;
    auto [resident, sampled] = sample_page_cache(in.fds.image_fd, ranges, kColdSamples);
    if (tracing_times()) trace_phasef("restorer: %u of %u sampled image pages cached", resident, sampled);
    if (sampled == 0 || 2 * resident >= sampled) return {};
  }
  return engage();
}

Status lay_out_memory(ArgArena &arena, const LayoutInputs &in, rs_args &a) {
  const CkptView &v = in.v;
  a.vma = arena.alloc<rs_vma>(v.vmas.records.size());
  a.fill = arena.alloc<rs_fill>(v.ranges.records.size());
  if (!a.vma || !a.fill) return make_error("restorer argument area too small");
  bool forced_fill = false;
  std::vector<bool> forced_vma;  // per rs_vma: filled through /proc/self/mem
  for (size_t i = 0; i < v.vmas.records.size(); i++) {
    const VmaRecord &m = v.vmas.records[i];
    auto kind = static_cast<VmaKind>(m.kind);
    if (kind == VmaKind::Vdso || kind == VmaKind::Vvar || kind == VmaKind::VvarVclock || kind == VmaKind::Vsyscall)
      continue;
    rs_vma &out = a.vma[a.nvma++];
    out = {};
    out.start = m.start;
    out.end = m.end;
    out.pgoff = m.pgoff;
    out.prot = m.prot;
    out.map_flags = map_flags_of(m);
    out.fd = in.fds.vma_fd[i];
    out.first_fill = a.nfill;
    out.madvise = madvise_of(m);
    out.lock = (m.flags & kVmaLocked) ? (RS_LOCK | ((m.flags & kVmaLockOnFault) ? RS_LOCK_ONFAULT : 0)) : 0;
    out.uffd = in.fds.uffd >= 0 && served_lazily(v, m);
    // A SysV segment is attached, its bytes already in it (sysv_ipc.cc).
    out.sysv_shm = kind == VmaKind::SysvShm;
    out.shmid = out.sysv_shm ? static_cast<i32>(m.ino) : -1;
    out.account = account_of(v, m);
    for (u32 k = 0; k < m.range_count && !in.fds.prefilled[i] && !out.uffd && !out.sysv_shm; k++) {
      const PageRangeRecord &r = v.ranges.records[m.first_range + k];
      if (!stored_in_file(r)) continue;
      // In the whole file, also for an embedded core and for bytes an
      // earlier core stores for it (stored_range says so).
      a.fill[a.nfill++] = {r.start, r.length, stored_range(in.image, v, r).file_offset, 0, 0};
    }
    out.nfill = a.nfill - out.first_fill;
    // Filled through /proc/self/mem from the scratch buffer (map_memory.c).
    forced_vma.push_back(out.nfill && out.account == RS_ACCOUNT_NO && !(out.prot & PROT_WRITE));
    if (forced_vma.back()) forced_fill = true;
  }
  // Segment checksums, checked by the restorer as it reads (fill_checks.h).
  if (!*in.checks) {
    auto planned = plan_fill_checks(in.image, a.fill, a.nfill);
    if (!planned) return planned.error();
    *in.checks = std::move(*planned);
  }
  const FillChecks *checks = &**in.checks;
  CKPT_ASSERT(checks->fill_check.size() == a.nfill) << "fill checks planned for " << checks->fill_check.size()
                                                   << " fills, this layout pass has " << a.nfill;
  a.check = arena.alloc<rs_check>(checks->checks.size() + 1);
  std::string context = checksum_context(in.image, v);
  char *context_copy = arena.alloc<char>(context.size() + 1, 1);
  if (!a.check || !context_copy) return make_error("restorer argument area too small");
  for (const rs_check &c : checks->checks) a.check[a.ncheck++] = c;
  for (u32 i = 0; i < a.nfill; i++) a.fill[i].check = checks->fill_check[i];
  std::memcpy(context_copy, context.c_str(), context.size() + 1);
  a.check_context = context_copy;
  // The slice a checked fill is hashed in when it goes through the
  // scratch buffer (map_memory.c, fill_checked; decision 230).
  constexpr u64 kCheckSlice = 64 * 1024;
  if ((a.ncheck && (a.fill_flags & RS_FILL_VIA_SCRATCH)) || forced_fill) {
    a.scratch = arena.alloc<u8>(kCheckSlice, kPageSize);
    if (!a.scratch) return make_error("restorer argument area too small");
    a.scratch_len = kCheckSlice;
  }
  CKPT_TRY(choose_fillers(in, a, forced_vma));
  // The kernel's vdso area, moved to where the image had it.
  a.move = arena.alloc<rs_move>(4);
  if (!a.move) return make_error("restorer argument area too small");
  for (const SelfMapping &m : in.self) {
    VmaKind k;
    if (m.name == "[vdso]") k = VmaKind::Vdso;
    else if (m.name == "[vvar]") k = VmaKind::Vvar;
    else if (m.name == "[vvar_vclock]") k = VmaKind::VvarVclock;
    else continue;
    for (const VmaRecord &r : v.vmas.records)
      if (static_cast<VmaKind>(r.kind) == k && a.nmove < 4) a.move[a.nmove++] = {m.start, r.start, m.end - m.start};
  }
  // mm fields, with the saved auxv.
  const TaskRecord &task = v.tasks.records[0];
  auto auxv = v.tasks.blob(task.auxv);
  if (!auxv) return auxv.error();
  u8 *auxv_copy = arena.alloc<u8>(auxv->size() + 16, 8);
  if (!auxv_copy) return make_error("restorer argument area too small");
  std::memcpy(auxv_copy, auxv->data(), auxv->size());
  a.mm = {task.start_code, task.end_code, task.start_data, task.end_data, task.start_brk, task.brk, task.start_stack,
          task.arg_start, task.arg_end, task.env_start, task.env_end, reinterpret_cast<u64>(auxv_copy),
          static_cast<u32>(auxv->size()), static_cast<u32>(in.fds.exe_fd)};
  a.close_fds = arena.alloc<int32_t>(in.fds.close_fds.size() + 1);
  if (!a.close_fds) return make_error("restorer argument area too small");
  for (int fd : in.fds.close_fds) a.close_fds[a.nclose++] = fd;
  a.guard = arena.alloc<rs_range>(v.guard_ranges.records.size() + 1);
  if (!a.guard) return make_error("restorer argument area too small");
  for (const GuardRangeRecord &g : v.guard_ranges.records) a.guard[a.nguard++] = {g.start, g.start + g.length};
  // The memfd seals open_memfd left to the restorer (memfd_late_seals),
  // and those of memfds only mapped, through the fd each is mapped from
  // (new_deleted_file_object left them; the restorer closes that fd
  // after), but in a tree, where imgtool adds them (add_late_seals).
  size_t late = std::count_if(v.fds.records.begin(), v.fds.records.end(),
                              [](const FdRecord &r) { return memfd_late_seals(r) != 0; }) +
                std::count_if(v.vmas.records.begin(), v.vmas.records.end(),
                              [](const VmaRecord &m) { return mapped_memfd_late_seals(m) != 0; });
  a.late_seal = arena.alloc<rs_seal>(late + 1);
  if (!a.late_seal) return make_error("restorer argument area too small");
  if (in.fds.late_seals_by_imgtool) return {};
  for (const FdRecord &r : v.fds.records)
    if (memfd_late_seals(r)) a.late_seal[a.nlate_seal++] = {r.fd, r.seals};
  for (size_t i = 0; i < v.vmas.records.size(); i++)
    if (u32 seals = mapped_memfd_late_seals(v.vmas.records[i]); seals && i < in.fds.vma_fd.size() && in.fds.vma_fd[i] >= 0)
      a.late_seal[a.nlate_seal++] = {in.fds.vma_fd[i], seals};
  return {};
}

// Threads, the leader first, each with its signal frame and privileges.
Status lay_out_threads(ArgArena &arena, const LayoutInputs &in, rs_args &a) {
  const CkptView &v = in.v;
  const TaskRecord &task = v.tasks.records[0];
  std::vector<const ThreadRecord *> order;
  for (const ThreadRecord &t : v.threads.records)
    if (t.tid == task.pid) order.insert(order.begin(), &t);
    else order.push_back(&t);
  if (order.empty() || order[0]->tid != task.pid) return make_error("the image has no thread for its main thread");
  a.thread = arena.alloc<rs_thread>(order.size());
  if (!a.thread) return make_error("restorer argument area too small");
  for (size_t i = 0; i < order.size(); i++) {
    const ThreadRecord &tr = *order[i];
    const CoreThread *ct = nullptr;
    for (const CoreThread &c : in.core.threads)
      if (c.prstatus.pr_pid == tr.tid) ct = &c;
    if (!ct) return make_error("thread %d has no registers", tr.tid);
    rs_thread &t = a.thread[a.nthread++];
    std::memset(&t, 0, sizeof t);
    t.tid = tr.tid;
    t.fs_base = ct->prstatus.pr_reg.fs_base;
    t.gs_base = ct->prstatus.pr_reg.gs_base;
    t.robust_list = tr.robust_list;
    t.robust_list_len = tr.robust_list_len;
    t.clear_child_tid = tr.clear_child_tid;
    t.rseq_addr = tr.rseq_addr;
    t.rseq_len = tr.rseq_len;
    t.rseq_sig = tr.rseq_sig;
    t.stack_top = in.stacks + (i + 1) * kThreadStack;
    std::string name(v.threads.str_or_empty(tr.comm));
    std::strncpy(t.comm, name.c_str(), sizeof t.comm - 1);
    CKPT_TRY(build_sigframe(arena, *ct, tr, t));
  }
  a.signal = arena.alloc<rs_signal>(v.pending.records.size() + 1);
  if (!a.signal) return make_error("restorer argument area too small");
  for (const PendingSignalRecord &p : v.pending.records) {
    rs_signal &s = a.signal[a.nsignal++];
    s.tid = p.tid;
    s.signo = static_cast<i32>(p.signo);
    std::memcpy(s.siginfo, p.siginfo, sizeof s.siginfo);
  }
  // Credentials: set by each thread in the restorer, after everything that
  // needs privilege.
  auto groups = v.tasks.blob(task.groups);
  if (!groups) return groups.error();
  a.ngroups = static_cast<u32>(groups->size() / 4);
  a.groups = arena.alloc<u32>(a.ngroups + 1);
  if (!a.groups) return make_error("restorer argument area too small");
  std::memcpy(a.groups, groups->data(), a.ngroups * 4);
  for (int i = 0; i < 3; i++) {
    a.uid[i] = task.uid[i];
    a.gid[i] = task.gid[i];
  }
  uid_t ids[3];
  gid_t gids[3];
  getresuid(&ids[0], &ids[1], &ids[2]);
  getresgid(&gids[0], &gids[1], &gids[2]);
  a.set_creds = ids[0] != task.uid[0] || ids[1] != task.uid[1] || ids[2] != task.uid[2] ||
                gids[0] != task.gid[0] || gids[1] != task.gid[1] || gids[2] != task.gid[2] || getuid() == 0;
  // In a user namespace of our own (restore --pidns unprivileged, pidns.h)
  // only our own ids are mapped: other ids cannot be taken there.
  if (a.set_creds && in_own_user_namespace())
    return make_error("restore --pidns as user %u: process %d ran as uid %u/%u/%u gid %u/%u/%u (real/effective/"
                      "saved), not as this user; only root can restore other users' processes",
                      unsigned(ids[0]), task.pid, unsigned(task.uid[0]), unsigned(task.uid[1]),
                      unsigned(task.uid[2]), unsigned(task.gid[0]), unsigned(task.gid[1]), unsigned(task.gid[2]));
  a.dumpable = (task.flags & kTaskDumpable) != 0;
  // Privileges, per thread, set right after the ids (privileges.c).
  a.cap_permitted_now = in.own.permitted;
  for (size_t i = 0; i < order.size(); i++)
    CKPT_TRY(set_thread_privileges(arena, v, *order[i], in.own, a.set_creds != 0, a.thread[i]));
  return {};
}

// How the restorer places and hashes checked fills (rs_args.fill_flags,
// decision 230): read into place and hashed there, on AVX2 where the CPU
// has it and the kernel saves its registers (cpu_avx2_usable: glibc's
// copy of CPUID and XGETBV; libgcc's __builtin_cpu_supports linked in a
// constructor that asked the CPU again, ~10 CPUID traps at every start of
// imgtool and the launcher, DECISIONS 245). CKPT_RESTORE_FILL, comma-separated, forces the
// other ways, for tests and for VMs where they are faster: "scratch"
// (decision 211's scratch buffer and process_vm_writev), "scalar" (the
// portable hash), "refuse-force" (the restorer acts as on a kernel that
// refuses its forced writes to /proc/self/mem, decision 237).
Expected<u32> fill_flags() {
  u32 flags = img::cpu_avx2_usable() ? RS_FILL_HASH_AVX2 : 0;
  const char *env = std::getenv("CKPT_RESTORE_FILL");
  std::string_view words = env ? env : "";
  while (!words.empty()) {
    size_t comma = words.find(',');
    std::string_view w = words.substr(0, comma);
    words = comma == std::string_view::npos ? std::string_view{} : words.substr(comma + 1);
    if (w == "scratch") flags |= RS_FILL_VIA_SCRATCH;
    else if (w == "scalar") flags &= ~RS_FILL_HASH_AVX2;
    else if (w == "refuse-force") flags |= RS_FILL_REFUSE_FORCE;
    else if (w == "one") flags |= RS_FILL_ONE;
    else if (w == "two") flags |= RS_FILL_PAIR_REQUIRED;
    else if (w == "second") flags |= RS_FILL_PAIR_REQUIRED | RS_FILL_SECOND_ONLY;
    else if (w == "busy") flags |= RS_FILL_ASSUME_BUSY;
    else if (!w.empty())
      return make_error("CKPT_RESTORE_FILL: unknown word '%s' (known: scratch, scalar, refuse-force, one, two, second, busy)",
                        std::string(w).c_str());
  }
  return flags;
}

// The whole argument block; returns where it starts.
Expected<rs_args *> lay_out_args(ArgArena &arena, const LayoutInputs &in) {
  rs_args *a = arena.alloc<rs_args>();
  if (!a) return make_error("restorer argument area too small");
  std::memset(a, 0, sizeof *a);
  a->magic = CKPT_RS_MAGIC;
  a->image_fd = in.fds.image_fd;
  a->status_fd = in.fds.status_fd;
  a->lazy = in.fds.uffd >= 0;
  a->uffd = in.fds.uffd;
  a->self_start = in.region_start;
  a->self_end = in.region_start + in.region_len;
  a->move_scratch = in.scratch;
  a->stopped = (in.v.tasks.records[0].flags & kTaskStopped) != 0;
  const TaskRecord &task = in.v.tasks.records[0];
  if ((task.settings & kTaskSettingsCaptured) && (task.settings & kTaskMlockFuture))
    a->mlockall_flags = MCL_FUTURE | ((task.settings & kTaskMlockFutureOnFault) ? MCL_ONFAULT : 0);
  auto flags = fill_flags();
  if (!flags) return flags.error();
  a->fill_flags = *flags;
  CKPT_TRY(lay_out_memory(arena, in, *a));
  CKPT_TRY(lay_out_threads(arena, in, *a));
  return a;
}

}  // namespace

Expected<RestorerRegion> lay_out_restorer(const ImageReader &image, const CkptView &v, const CoreView &core,
                                          const RestorerFds &fds) {
  auto self = read_self_maps();
  if (!self) return self.error();
  auto own = own_privileges();
  if (!own) return own.error();
  const u64 blob_len = static_cast<u64>(ckpt_restorer_blob_end - ckpt_restorer_blob);
  // One more stack for the second filler (decision 248), untouched
  // unless it runs.
  const u64 stacks_len = (v.threads.records.size() + 1) * kThreadStack;
  std::optional<FillChecks> checks;
  u64 move_len = 0;
  for (const SelfMapping &m : *self)
    if (is_vdso_area(m.name)) move_len += m.end - m.start;

  // Measure: the same layout into a heap buffer (grown until it fits), so
  // that the region is exactly as large as the arguments need. calloc, not
  // a std::vector: a buffer this large comes zeroed from mmap and only the
  // pages the layout writes are touched (the vector wrote zeros over all of
  // it, a page fault per 4 KiB page on this VM), so the first guess can be
  // generous: each guess that is too small is a whole layout for nothing
  // (a 256 MiB memhog needed two from 64 KiB, ~1 ms of a lazy restore).
  u64 args_len = 0;
  for (u64 guess = 1024 * 1024;; guess *= 2) {
    std::unique_ptr<u8, decltype(&std::free)> buffer(static_cast<u8 *>(std::calloc(guess, 1)), &std::free);
    if (!buffer) return make_error("cannot allocate %llu bytes to measure the restorer's arguments",
                                   (unsigned long long)guess);
    ArgArena measure{buffer.get(), guess, 0};
    LayoutInputs in{image, v, core, fds, *self, *own, 0, 0, 0, 0, &checks};
    auto laid = lay_out_args(measure, in);
    if (laid) {
      args_len = page_up(measure.used);
      break;
    }
    if (measure.used <= measure.size) return laid.error();  // a real failure, not the size
  }
  const u64 region_len = page_up(blob_len) + args_len + stacks_len + move_len;
  auto at = find_free_range(v, *self, region_len);
  if (!at) return at.error();
  void *region = mmap(reinterpret_cast<void *>(*at), region_len, PROT_READ | PROT_WRITE | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (region == MAP_FAILED)
    return make_error("cannot map the restorer at 0x%llx: %s", (unsigned long long)*at, strerror(errno));
  u8 *base = static_cast<u8 *>(region);
  std::memcpy(base, ckpt_restorer_blob, blob_len);
  ArgArena arena{base + page_up(blob_len), args_len, 0};
  const u64 stacks = reinterpret_cast<u64>(arena.base + args_len);
  LayoutInputs in{image, v, core, fds, *self, *own, *at, region_len, stacks, stacks + stacks_len, &checks};
  auto a = lay_out_args(arena, in);
  if (!a) return a.error();
  return RestorerRegion{reinterpret_cast<u64>(base), *a, (*a)->thread[0].stack_top, std::move((*checks).before)};
}

void jump_to_restorer(const RestorerRegion &region) {
  // glibc registered an rseq area in our TLS; once the restorer unmaps it
  // the kernel would fault updating it on the next return to user mode
  // (SIGSEGV, SI_KERNEL). Unregister it: the restorer registers the image's.
  if (__rseq_size > 0) {
    u64 area = reinterpret_cast<u64>(__builtin_thread_pointer()) + __rseq_offset;
    // glibc 2.36 registers 32 bytes but publishes __rseq_size 20.
    if (syscall(SYS_rseq, area, 32, 1 /* RSEQ_FLAG_UNREGISTER */, RSEQ_SIG) < 0)
      syscall(SYS_rseq, area, __rseq_size, 1, RSEQ_SIG);
  }
  // The jump: onto the leader's restorer stack, into the blob.
  __asm__ volatile("mov %0, %%rsp\n"
                   "mov %1, %%rdi\n"
                   "jmp *%2\n"
                   :
                   : "r"(region.stack), "r"(region.args), "r"(region.entry)
                   : "memory");
  __builtin_unreachable();
}

}  // namespace ckpt::reader
