// The round-trip fixture: the image of every note type (make_fixture) and
// how it is written (write_fixture); see roundtrip_fixture.h.
#include "roundtrip_fixture.h"

#include <algorithm>
#include <sys/stat.h>

namespace ckpt::img::roundtrip {

Fixture make_fixture() {
  Fixture f;
  ImageNotes &n = f.notes;
  n.psinfo = patterned<PrPsInfo>(1);
  for (int t = 0; t < kThreads; t++) {
    ImageNotes::Thread th;
    th.prstatus = patterned<PrStatus>(10 + t);
    th.prstatus.pr_pid = kPid + t;
    // thread 0: both regsets; thread 1: no XSTATE; thread 2: no FPREGSET.
    if (t != 2) th.fpregs = random_bytes(kFpregsetSize, 20 + t);
    if (t != 1) th.xstate = random_bytes(t == 0 ? 832 : 2696, 30 + t);
    n.threads.push_back(th);
  }
  n.siginfo = random_bytes(kSiginfoSize, 40);
  n.auxv = {AT_PHDR, 0x400040, AT_PHNUM, 11, AT_PAGESZ, 4096, AT_ENTRY, 0x401000, AT_RANDOM, 0x7ffc0000,
            AT_NULL, 0};
  n.files = {{0x400000, 0x401000, 0, "/usr/bin/roundtrip"},
             {0x401000, 0x405000, 0x1000, "/usr/bin/roundtrip"},
             {0x7f0000000000, 0x7f0000200000, 0x123000, std::string(300, 'L') + "/libx.so"},
             {0x7f0000300000, 0x7f0000301000, u64(0xfffff) << 12, "/dev/zero (deleted)"}};

  // Identity.
  IdentityRecord id = patterned<IdentityRecord>(100);
  id.flags = kIdentityRestorable;
  id.kernel_release = n.identity.add_string("6.1.0-roundtrip");
  id.hostname = n.identity.add_string("host.example");
  id.writer = n.identity.add_string("roundtrip test");
  n.identity.add(id);

  // Tasks: two processes.
  for (int p = 0; p < 2; p++) {
    TaskRecord t = patterned<TaskRecord>(200 + p);
    t.pid = kPid + 1000 * p;
    std::string s[4] = {"comm" + std::to_string(p), "/cwd/" + std::to_string(p), "/", "/usr/bin/exe" + std::to_string(p)};
    t.comm = n.tasks.add_string(s[0]);
    t.cwd = n.tasks.add_string(s[1]);
    t.root = n.tasks.add_string(s[2]);
    t.exe = n.tasks.add_string(s[3]);
    t.cgroup = n.tasks.add_string("0::/test.slice/" + std::to_string(p));
    t.cgroup_settings = n.tasks.add_string("pids\tpids.max\t" + std::to_string(50 + p) + "\n");
    for (auto &x : s) f.task_strings.push_back(x);
    f.task_groups.push_back(random_bytes(4 * (p + 1), 210 + p));
    f.task_auxv.push_back(random_bytes(16 * 6, 220 + p));
    t.groups = n.tasks.add_blob(f.task_groups.back());
    t.auxv = n.tasks.add_blob(f.task_auxv.back());
    n.tasks.add(t);
  }

  for (int t = 0; t < kThreads; t++) {
    ThreadRecord r = patterned<ThreadRecord>(300 + t);
    r.tid = kPid + t;
    r.pid = kPid;
    f.thread_names.push_back(t ? "worker-" + std::to_string(t) : "main");
    r.comm = n.thread_records.add_string(f.thread_names.back());
    // Privileges: thread 0 in seccomp filter mode with two filters,
    // thread 1 in strict mode, thread 2 as an older writer left it.
    r.flags &= ~u32(kThreadPrivileges);
    if (t < 2) {
      r.flags |= kThreadPrivileges;
      r.seccomp_mode = static_cast<u32>(t == 0 ? SeccompMode::Filter : SeccompMode::Strict);
      r.seccomp_filter_count = t == 0 ? 2 : 0;
    }
    n.thread_records.add(r);
  }
  // Stored newest first here: position, not table order, is install order.
  for (u32 pos : {1u, 0u}) {
    f.seccomp_programs.push_back(random_bytes(8 * (3 + pos), 320 + pos));
    n.seccomp_filters.add({kPid, kPid, pos, pos ? kSeccompFilterFlagLog : 0u,
                           n.seccomp_filters.add_blob(f.seccomp_programs.back())});
  }

  // Memory: segment 0 fully stored; 1 stored then zero; 2 not stored at
  // all (filesz 0); 3 large (beyond the writer's 1 MiB buffer) with an odd
  // size; 4 odd-sized with a file-backed tail; 5 and 7 zero segments (the
  // shared zero block, no data written); 6 stored with a run of zeros in
  // the middle fed by write_zeros (a hole where the file allows).
  struct S {
    u64 vaddr, memsz, filesz;
    u32 flags;
    bool zero;
  };
  const S segs[] = {{0x400000, 0x1000, 0x1000, PF_R | PF_X, false},
                    {0x401000, 0x4000, 0x2000, PF_R | PF_W, false},
                    {0x600000, 0x3000, 0, PF_R, false},
                    {0x7f0000000000, 0x180000, 0x17f123, PF_R | PF_W, false},
                    {0x7f0000300000, 0x3000, 0x1235, PF_R | PF_W | PF_X, false},
                    {0x7f0000400000, 0x3000, 0x3000, PF_R | PF_W, true},
                    {0x7f0000500000, 0x4000, 0x4000, PF_R | PF_W, false},
                    {0x7f0000600000, 0x1000, 0x1000, PF_R, true}};
  for (size_t i = 0; i < std::size(segs); i++) {
    const S &s = segs[i];
    SegmentPlan plan{s.vaddr, s.memsz, s.filesz, s.flags};
    plan.zero = s.zero;
    f.segments.push_back(plan);
    if (s.zero) {
      f.data.push_back(std::vector<u8>(s.filesz, 0));  // what it reads as; not written
    } else if (i == 6) {
      std::vector<u8> d = random_bytes(s.filesz, 400 + i);
      std::fill(d.begin() + 0x1000, d.begin() + 0x3000, 0);
      f.data.push_back(d);
    } else if (s.filesz) {
      f.data.push_back(random_bytes(s.filesz, 400 + i));
    } else {
      f.data.push_back({});
    }
    u64 stored_pages = (s.filesz / kPageSize) * kPageSize;
    VmaRecord v = patterned<VmaRecord>(500 + i);
    v.start = s.vaddr;
    v.end = s.vaddr + s.memsz;
    v.pid = kPid;
    v.first_range = static_cast<u32>(n.ranges.records.size());
    f.vma_paths.push_back(i % 2 ? "" : "/mapped/file" + std::to_string(i));
    v.path = n.vmas.add_string(f.vma_paths.back());
    f.vma_build_ids.push_back(random_bytes(i % 2 ? 0 : 20, 510 + i));
    v.build_id = n.vmas.add_blob(f.vma_build_ids.back());
    u32 phdr = ImageLayout::phdr_index_of_segment(i);
    u32 count = 0;
    if (stored_pages) {
      n.ranges.add({s.vaddr, stored_pages, static_cast<u32>(PageSource::Image), phdr});
      count++;
    }
    if (stored_pages < s.memsz) {
      PageSource src = i == 4 ? PageSource::File : i == 2 ? PageSource::Absent : PageSource::Zero;
      n.ranges.add({s.vaddr + stored_pages, s.memsz - stored_pages, static_cast<u32>(src), 0});
      count++;
    }
    v.range_count = count;
    n.vmas.add(v);
  }

  for (int i = 0; i < 3; i++) {
    FdRecord r = patterned<FdRecord>(600 + i);
    r.pid = kPid;
    r.fd = i;
    f.fd_paths.push_back("/dev/pts/" + std::to_string(i));
    r.path = n.fds.add_string(f.fd_paths.back());
    f.fd_contents.push_back(random_bytes(i * 33, 610 + i));
    r.content = n.fds.add_blob(f.fd_contents.back());
    r.state = n.fds.add_blob(random_bytes(8 + 16 * i, 620 + i));  // any bytes: decode checks bounds only
    n.fds.add(r);
  }
  for (int i = 0; i < 2; i++) {
    PipeRecord r = patterned<PipeRecord>(700 + i);
    f.pipe_data.push_back(random_bytes(100 + i, 710 + i));
    r.data = n.pipes.add_blob(f.pipe_data.back());
    n.pipes.add(r);
  }
  for (int i = 0; i < 4; i++) n.sigactions.add(patterned<SigActionRecord>(800 + i));
  for (int i = 0; i < 2; i++) n.pending.add(patterned<PendingSignalRecord>(900 + i));
  for (int i = 0; i < 3; i++) n.timers.add(patterned<TimerRecord>(1000 + i));
  for (int i = 0; i < 16; i++) n.rlimits.add(patterned<RlimitRecord>(1100 + i));
  // Two zombies (no embedded core): every other field round-trips as written.
  for (int i = 0; i < 2; i++) {
    TreeRecord r = patterned<TreeRecord>(1200 + i);
    r.pid = 1200 + i;
    r.ppid = n.identity.records[0].root_pid;
    r.offset = r.size = 0;
    r.flags = kTreeZombie;
    r.comm = n.tree.add_string("zombie" + std::to_string(i));
    n.tree.add(r);
  }
  n.identity.records[0].process_count = 3;
  ParentRecord parent = patterned<ParentRecord>(1300);
  parent.path_hint = n.parent.add_string("../previous.ckpt");
  n.parent.add(parent);
  StoredFileRecord stored = patterned<StoredFileRecord>(1400);
  stored.path = n.stored_files.add_string("/dev/shm/stored");
  stored.content = n.stored_files.add_blob(std::vector<u8>{'a', 'b', 'c'});
  stored.size = 3;
  n.stored_files.add(stored);
  n.locks.add(patterned<LockRecord>(1500));
  n.guard_ranges.add(patterned<GuardRangeRecord>(1600));
  return f;
}

Status write_fixture(const Fixture &f, int fd, size_t chunk, ImageLayout *layout_out) {
  auto w = ImageWriter::create(f.notes.encode(), f.segments);
  if (!w) return w.error();
  if (layout_out) *layout_out = w->layout();
  CKPT_TRY(w->begin(fd));
  std::vector<u8> all;
  size_t zero_from = 0, zero_to = 0;
  for (size_t i = 0; i < f.data.size(); i++) {
    if (f.segments[i].zero) continue;
    if (f.segments[i].vaddr == 0x7f0000500000) {
      zero_from = all.size() + 0x1000;
      zero_to = all.size() + 0x3000;
    }
    all.insert(all.end(), f.data[i].begin(), f.data[i].end());
  }
  for (size_t at = 0; at < all.size();) {
    if (at == zero_from && zero_to > zero_from) {
      CKPT_TRY(w->write_zeros(zero_to - zero_from));
      at = zero_to;
      continue;
    }
    size_t end = std::min(at + chunk, all.size());
    if (at < zero_from && end > zero_from) end = zero_from;
    CKPT_TRY(w->write(std::span<const u8>(all).subspan(at, end - at)));
    at = end;
  }
  CKPT_TRY(w->finish());
  if (w->written() != w->layout().total_size) return make_error("written() disagrees with the layout");
  return {};
}

std::vector<u8> read_fd_all(int fd) {
  std::vector<u8> out;
  struct stat st;
  if (fstat(fd, &st) != 0) return out;
  out.resize(st.st_size);
  if (pread(fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) out.clear();
  return out;
}

}  // namespace ckpt::img::roundtrip
