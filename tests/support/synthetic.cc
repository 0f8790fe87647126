#include "synthetic.h"

#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <elf.h>

namespace ckpt::test {

using namespace img;

uint64_t synthetic_reg(int thread, int slot) { return 0x1000000ull * (thread + 1) + slot * 0x10 + 0x7; }

SyntheticImage make_synthetic(const SyntheticOptions &o) {
  SyntheticImage im;
  ImageNotes &n = im.notes;
  PrPsInfo ps{};
  ps.pr_state = 'S';
  ps.pr_sname = 'S';
  ps.pr_pid = o.pid;
  ps.pr_ppid = 1;
  ps.pr_pgrp = o.pid;
  ps.pr_sid = o.pid;
  std::strcpy(ps.pr_fname, "synthetic");
  std::strcpy(ps.pr_psargs, "synthetic --test");
  n.psinfo = ps;

  const u64 base = 0x10000000;
  for (int t = 0; t < o.threads; t++) {
    ImageNotes::Thread th;
    th.prstatus.pr_pid = o.pid + t;
    th.prstatus.pr_ppid = 1;
    th.prstatus.pr_pgrp = o.pid;
    th.prstatus.pr_sid = o.pid;
    u64 *regs = reinterpret_cast<u64 *>(&th.prstatus.pr_reg);
    for (int r = 0; r < 27; r++) regs[r] = synthetic_reg(t, r);
    // Keep the fields gdb interprets plausible: code and stack inside the
    // first mapping, user segment selectors.
    th.prstatus.pr_reg.rip = base + 0x100 + t;
    th.prstatus.pr_reg.rsp = base + 0x1800 - t * 0x100;
    th.prstatus.pr_reg.rbp = 0;
    th.prstatus.pr_reg.cs = 0x33;
    th.prstatus.pr_reg.ss = 0x2b;
    th.prstatus.pr_reg.ds = th.prstatus.pr_reg.es = th.prstatus.pr_reg.fs = th.prstatus.pr_reg.gs = 0;
    th.prstatus.pr_reg.eflags = 0x246;
    th.prstatus.pr_reg.orig_rax = t == 1 ? 7 : ~0ull;  // thread 1 "in poll"
    th.prstatus.pr_fpvalid = 1;
    th.fpregs.assign(kFpregsetSize, 0);
    th.fpregs[0] = 0x7f;  // FCW 0x037f
    th.fpregs[1] = 0x03;
    th.fpregs[24] = 0x80;  // MXCSR 0x1f80
    th.fpregs[25] = 0x1f;
    th.xstate.assign(832, 0);
    std::memcpy(th.xstate.data(), th.fpregs.data(), kFpregsetSize);
    u64 xcr0 = 7;
    std::memcpy(th.xstate.data() + kXstateXcr0Offset, &xcr0, 8);
    std::memcpy(th.xstate.data() + 512, &xcr0, 8);  // XSTATE_BV
    n.threads.push_back(th);
  }
  n.siginfo.assign(kSiginfoSize, 0);
  n.auxv = {AT_PAGESZ, 4096, AT_ENTRY, base + 0x100, AT_NULL, 0};

  IdentityRecord id{};
  for (int i = 0; i < 16; i++) id.image_id[i] = static_cast<u8>(0xa0 + i);
  id.created_sec = 1790000000;
  id.format_minor = kFormatMinor;
  id.checkpoint_id = 7;
  id.xsave_features = 3;  // x87|SSE: restorable on any x86-64
  id.xsave_size = 832;
  id.page_size = 4096;
  id.flags = u32(kIdentityRestorable) | (o.with_parent ? u32(kIdentityIncremental) : 0u);
  id.root_pid = o.pid;
  id.process_count = 1;
  id.kernel_release = n.identity.add_string("6.18.0-synthetic");
  id.hostname = n.identity.add_string("testhost");
  id.writer = n.identity.add_string("ckpt tests");
  n.identity.add(id);

  TaskRecord task{};
  task.pid = task.pgid = task.sid = o.pid;
  task.ppid = 1;
  task.umask = 022;
  task.thread_count = o.threads;
  task.flags = u32(kTaskSessionLeader) | u32(kTaskGroupLeader);
  task.start_code = base;
  task.end_code = base + 0x1000;
  task.comm = n.tasks.add_string("synthetic");
  task.cwd = n.tasks.add_string("/tmp");
  task.root = n.tasks.add_string("/");
  task.exe = n.tasks.add_string("/usr/bin/synthetic");
  u32 groups[2] = {4, 27};
  task.groups = n.tasks.add_blob({reinterpret_cast<const u8 *>(groups), sizeof groups});
  n.tasks.add(task);

  for (int t = 0; t < o.threads; t++) {
    ThreadRecord tr{};
    tr.tid = o.pid + t;
    tr.pid = o.pid;
    tr.fs_base = synthetic_reg(t, 21);
    tr.sigmask = t == 2 ? (1ull << (SIGUSR1 - 1)) : 0;
    tr.syscall_nr = t == 1 ? 7 : -1;
    tr.flags = (t == 0 ? u32(kThreadLeader) : 0u) | (t == 1 ? u32(kThreadInSyscall) : 0u);
    tr.comm = n.thread_records.add_string(t == 0 ? "synthetic" : "worker");
    n.thread_records.add(tr);
  }

  // Memory: each mapping is 2 stored pages followed by 2 zero pages.
  for (int s = 0; s < o.segments; s++) {
    u64 start = base + s * 0x10000;
    SegmentPlan seg{start, 0x4000, 0x2000, PF_R | PF_W | (s == 0 ? PF_X : 0u)};
    im.segments.push_back(seg);
    std::vector<u8> data(0x2000);
    for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<u8>(i * 7 + s);
    im.segment_data.push_back(std::move(data));
    VmaRecord v{};
    v.start = start;
    v.end = start + 0x4000;
    v.prot = PROT_READ | PROT_WRITE | (s == 0 ? PROT_EXEC : 0);
    v.kind = static_cast<u32>(VmaKind::Anon);
    v.pid = o.pid;
    v.first_range = static_cast<u32>(n.ranges.records.size());
    v.range_count = 2;
    n.vmas.add(v);
    u32 phdr = ImageLayout::phdr_index_of_segment(im.segments.size() - 1);
    n.ranges.add({start, 0x2000, static_cast<u32>(PageSource::Image), phdr});
    n.ranges.add({start + 0x2000, 0x2000,
                  static_cast<u32>(o.with_parent && s == 1 ? PageSource::Parent : PageSource::Zero), 0});
  }
  for (size_t e = 0; e < o.extra_segments; e++)
    im.segments.push_back(SegmentPlan{0x700000000000ull + e * 0x1000, 0x1000, 0, PF_R});

  FdRecord fd{};
  fd.pid = o.pid;
  fd.fd = 3;
  fd.type = static_cast<u32>(FdType::Regular);
  fd.open_flags = O_RDWR;
  fd.pos = 1234;
  fd.path = n.fds.add_string("/tmp/synthetic.txt");
  n.fds.add(fd);
  FdRecord pipe_fd{};
  pipe_fd.pid = o.pid;
  pipe_fd.fd = 4;
  pipe_fd.type = static_cast<u32>(FdType::PipeRead);
  pipe_fd.pipe_id = 1;
  pipe_fd.path = n.fds.add_string("pipe:[99]");
  n.fds.add(pipe_fd);
  const u8 buffered[] = "unread bytes";
  n.pipes.add({1, 65536, 99, n.pipes.add_blob(buffered)});
  n.sigactions.add({o.pid, u32(SIGUSR1), base + 0x200, 0x04000004, base + 0x300, 0});
  n.sigactions.add({o.pid, u32(SIGPIPE), 1, 0, 0, 0});
  PendingSignalRecord pend{};
  pend.pid = o.pid;
  pend.tid = o.pid + 2;
  pend.signo = u32(SIGUSR1);
  pend.siginfo[0] = SIGUSR1;
  n.pending.add(pend);
  n.timers.add({o.pid, static_cast<u32>(TimerKind::ItimerReal), 0, 0, 0, SIGALRM, 0, 0, 0, 0, 500000000});
  n.rlimits.add({o.pid, 7, 1024, 4096});
  n.rlimits.add({o.pid, 3, 8 << 20, ~0ull});
  if (o.with_parent) {
    ParentRecord p{};
    for (int i = 0; i < 16; i++) p.image_id[i] = static_cast<u8>(0x50 + i);
    p.path_hint = n.parent.add_string("parent.ckpt");
    n.parent.add(p);
  }
  return im;
}

std::vector<uint8_t> encode_image(const SyntheticImage &image, bool ckpt_marker) {
  std::vector<Note> notes = image.notes.encode();
  notes.insert(notes.end(), image.extra_notes.begin(), image.extra_notes.end());
  return encode_with_notes(std::move(notes), image, ckpt_marker);
}

std::vector<uint8_t> encode_with_notes(std::vector<Note> notes, const SyntheticImage &image, bool ckpt_marker) {
  ImageWriter::Options opts;
  opts.ckpt_marker = ckpt_marker;
  auto w = ImageWriter::create(std::move(notes), image.segments, opts);
  if (!w) return {};
  int fd = memfd_create("synthetic", MFD_CLOEXEC);
  if (fd < 0) return {};
  bool ok = bool(w->begin(fd));
  for (const auto &d : image.segment_data)
    if (ok) ok = bool(w->write(d));
  if (ok) ok = bool(w->finish());
  std::vector<uint8_t> out;
  if (ok) {
    off_t size = lseek(fd, 0, SEEK_END);
    out.resize(size);
    if (pread(fd, out.data(), size, 0) != size) out.clear();
  }
  close(fd);
  return out;
}

SyntheticTree make_synthetic_tree() {
  SyntheticTree t;
  t.root = make_synthetic();
  struct Member {
    int pid, ppid;
    bool zombie;
  };
  const Member members[] = {{5000, 4242, false}, {5500, 4242, true}, {6000, 5000, false}};
  for (const Member &m : members) {
    TreeRecord r{};
    r.pid = m.pid;
    r.ppid = m.ppid;
    r.pgid = r.sid = 4242;
    r.creator_tid = m.ppid;
    r.flags = m.zombie ? u32(kTreeZombie) : 0u;
    r.wait_status = m.zombie ? 7 << 8 : 0;
    r.exit_signal = SIGCHLD;
    r.comm = t.root.notes.tree.add_string(m.zombie ? "zombie" : "child");
    t.root.notes.tree.add(r);
    if (m.zombie) continue;
    SyntheticOptions o;
    o.pid = m.pid;
    o.threads = 1;
    o.segments = 2;
    SyntheticImage part = make_synthetic(o);
    part.notes.tasks.records[0].ppid = m.ppid;
    part.notes.tasks.records[0].pgid = part.notes.tasks.records[0].sid = 4242;
    part.notes.tasks.records[0].flags = 0;
    t.parts.push_back(std::move(part));
  }
  t.root.notes.identity.records[0].process_count = 1 + 3;
  return t;
}

bool write_tree_image(const SyntheticTree &tree, int fd) {
  std::vector<EmbeddedCorePlan> parts;
  for (const SyntheticImage &p : tree.parts) parts.push_back({p.notes.encode(), p.segments});
  auto w = ImageWriter::create_tree(tree.root.notes.encode(), tree.root.segments, std::move(parts), {});
  if (!w) return false;
  if (!w->begin(fd)) return false;
  for (const auto &d : tree.root.segment_data)
    if (!w->write(d)) return false;
  for (size_t i = 0; i < tree.parts.size(); i++) {
    auto part = w->begin_embedded(i);
    if (!part) return false;
    for (const auto &d : tree.parts[i].segment_data)
      if (!(*part)->write(d)) return false;
    if (!(*part)->finish()) return false;
  }
  return bool(w->finish());
}

std::vector<uint8_t> encode_tree_image(const SyntheticTree &tree) {
  int fd = memfd_create("synthetic-tree", MFD_CLOEXEC);
  if (fd < 0) return {};
  std::vector<uint8_t> out;
  if (write_tree_image(tree, fd)) {
    off_t size = lseek(fd, 0, SEEK_END);
    out.resize(size);
    if (pread(fd, out.data(), size, 0) != size) out.clear();
  }
  close(fd);
  return out;
}

bool write_file(const std::string &path, const std::vector<uint8_t> &bytes) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  close(fd);
  return ok;
}

std::vector<uint8_t> read_file(const std::string &path) {
  std::vector<uint8_t> out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat st;
  if (fstat(fd, &st) == 0) {
    out.resize(st.st_size);
    if (pread(fd, out.data(), out.size(), 0) != static_cast<ssize_t>(out.size())) out.clear();
  }
  close(fd);
  return out;
}

SyntheticImage make_synthetic_with_files() {
  SyntheticOptions o;
  o.threads = 4;
  SyntheticImage im = make_synthetic(o);
  im.notes.files = {{0x10000000, 0x10004000, 0, "/usr/bin/synthetic"}, {0x10010000, 0x10014000, 0x3000, "/lib/x.so"}};
  return im;
}

}  // namespace ckpt::test
