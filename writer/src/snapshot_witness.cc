#include "snapshot_witness.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fd_kinds/fd_kind.h"
#include "memory.h"
#include "procfs.h"
#include "snapshot_plan.h"

namespace ckpt::writer {

using namespace img;

// The x86-64 ABI's red zone: a leaf function keeps live data in the 128
// bytes below rsp. Below that only our injections wrote (their scratch and
// return frame, which the copy keeps: snapshot.cc, inject.cc), so the
// check starts here.
static constexpr u64 kRedZone = 128;

namespace {

const PageRun *run_at(const std::vector<VmaPlan> &plan, u64 addr) {
  for (const VmaPlan &v : plan) {
    if (addr < v.map.start || addr >= v.map.end) continue;
    for (const PageRun &r : v.runs)
      if (addr >= r.start && addr < r.start + r.length) return &r;
    return nullptr;
  }
  return nullptr;
}

bool excluded_at(const ExcludedRanges &excluded, u64 addr) {
  return std::any_of(excluded.begin(), excluded.end(), [&](const auto &r) { return addr >= r.first && addr < r.second; });
}

}  // namespace

Expected<std::vector<StackWitness>> read_stack_witnesses(const ProcessCapture &pc) {
  std::vector<StackWitness> out;
  UniqueFd mem(open_mem(pc.pid));
  if (!mem.valid()) return make_error("cannot open /proc/%d/mem: %s", pc.pid, strerror(errno));
  for (const ThreadCapture &t : pc.threads) {
    u64 sp = t.regs.rsp;
    auto m = std::find_if(pc.maps.begin(), pc.maps.end(), [&](const MapEntry &e) { return sp >= e.start && sp < e.end; });
    if (m == pc.maps.end() || m->shared || !(m->prot & PROT_READ) || read_while_frozen(outline_vma(*m))) continue;
    u64 from = std::max(m->start, sp >= kRedZone ? sp - kRedZone : 0);
    u64 to = std::min(m->end, (sp & ~(kPageSize - 1)) + 2 * kPageSize);
    StackWitness w{t.tid, from, std::vector<u8>(to - from)};
    // An unreadable stack is not this check's business: the dump reports it.
    if (read_mem_at(mem.get(), from, w.bytes.data(), w.bytes.size()) == w.bytes.size()) out.push_back(std::move(w));
  }
  return out;
}

Status check_stack_witnesses(pid_t target, pid_t copy, const std::vector<StackWitness> &witnesses,
                             const std::vector<VmaPlan> &plan, const ExcludedRanges &excluded) {
  if (witnesses.empty()) return {};
  UniqueFd mem(open_mem(copy));
  if (!mem.valid()) return make_error("cannot open /proc/%d/mem: %s", copy, strerror(errno));
  std::vector<u8> seen;
  for (const StackWitness &w : witnesses) {
    u64 end = w.from + w.bytes.size();
    for (u64 at = w.from; at < end;) {
      u64 page = at & ~(kPageSize - 1);
      u64 upto = std::min(end, page + kPageSize);
      const u8 *want = w.bytes.data() + (at - w.from);
      size_t len = upto - at;
      const PageRun *r = run_at(plan, at);
      const char *how = nullptr;
      if (!r || excluded_at(excluded, at) || r->source == PageSource::Absent || r->source == PageSource::Parent) {
        // Not this copy's bytes (left out by the program, in a parent).
      } else if (r->source == PageSource::Zero) {
        if (std::any_of(want, want + len, [](u8 b) { return b != 0; })) how = "planned as zeros";
      } else {
        seen.resize(len);
        if (read_mem_at(mem.get(), at, seen.data(), len) != len) how = "unreadable in the copy";
        else if (std::memcmp(seen.data(), want, len) != 0)
          how = std::all_of(seen.begin(), seen.end(), [](u8 b) { return b == 0; }) ? "zeros in the copy"
                                                                                   : "other bytes in the copy";
      }
      if (how)
        return make_error("process %d: its snapshot copy %d does not hold thread %d's stack at 0x%llx as it was "
                          "when frozen (%s); not writing a wrong image (dump with --full-freeze)",
                          target, copy, w.tid, (unsigned long long)page, how);
      at = upto;
    }
  }
  return {};
}

void zero_page_for_test(pid_t pid, u64 addr) {
  static const u8 zeros[kPageSize] = {};
  struct iovec local = {const_cast<u8 *>(zeros), kPageSize};
  struct iovec remote = {reinterpret_cast<void *>(addr & ~(kPageSize - 1)), kPageSize};
  (void)process_vm_writev(pid, &local, 1, &remote, 1, 0);
}

}  // namespace ckpt::writer
