// Every note type through ImageNotes -> ImageWriter -> ImageReader ->
// decode_core / decode_ckpt, compared field by field; the file layout the
// writer promises; PN_XNUM; and the writer's refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <elf.h>

#include <ckpt/img/image_notes.h>
#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>
#include <ckpt/img/writer.h>
#include <ckpt/reader/validate.h>

#include "synthetic.h"

using namespace ckpt::img;

namespace {

// Every byte of a record set to a value that depends on its position and a
// seed, so a field copied to the wrong place or dropped shows up.
template <typename T>
T patterned(u32 seed) {
  T v;
  u8 *p = reinterpret_cast<u8 *>(&v);
  for (size_t i = 0; i < sizeof(T); i++) p[i] = static_cast<u8>(i * 37 + seed * 101 + 11 + (i >> 8));
  return v;
}

std::vector<u8> random_bytes(size_t n, u32 seed) {
  std::mt19937 rng(seed);
  std::vector<u8> v(n);
  for (u8 &b : v) b = static_cast<u8>(rng());
  return v;
}

std::string bytes_str(std::span<const u8> s) { return std::string(s.begin(), s.end()); }

// The complete image every round-trip test reads back.
struct Fixture {
  ImageNotes notes;
  std::vector<SegmentPlan> segments;
  std::vector<std::vector<u8>> data;  // filesz bytes per segment
  // What the tables' strings and blobs should read back as.
  std::vector<std::string> task_strings;  // comm, cwd, root, exe per task
  std::vector<std::vector<u8>> task_groups, task_auxv;
  std::vector<std::string> thread_names, vma_paths, fd_paths;
  std::vector<std::vector<u8>> vma_build_ids, fd_contents, pipe_data, seccomp_programs;
};

constexpr int kThreads = 3;
constexpr int kPid = 3100;

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

// Writes the fixture to fd, feeding segment data in `chunk`-byte writes that
// straddle segment boundaries; segment 6's zero run goes through
// write_zeros, zero segments take no data at all.
Status write_fixture(const Fixture &f, int fd, size_t chunk, ImageLayout *layout_out = nullptr) {
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

class RoundTrip : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new Fixture(make_fixture());
    memfd_ = memfd_create("roundtrip", MFD_CLOEXEC);
    ASSERT_GE(memfd_, 0);
    layout_ = new ImageLayout;
    Status s = write_fixture(*fixture_, memfd_, 1000, layout_);
    ASSERT_TRUE(s) << s.error().message();
    bytes_ = new std::vector<u8>(read_fd_all(memfd_));
    ASSERT_FALSE(bytes_->empty());
    auto r = ImageReader::from_bytes(*bytes_);
    ASSERT_TRUE(r) << r.error().message();
    reader_ = new ImageReader(r.take());
  }
  static void TearDownTestSuite() {
    delete reader_;
    delete bytes_;
    delete layout_;
    delete fixture_;
    if (memfd_ >= 0) close(memfd_);
    reader_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(reader_, nullptr); }

  static CkptView ckpt() {
    auto v = decode_ckpt(*reader_);
    EXPECT_TRUE(v) << v.error().message();
    return v ? v.take() : CkptView{};
  }
  static CoreView core() {
    auto v = decode_core(*reader_);
    EXPECT_TRUE(v) << v.error().message();
    return v ? v.take() : CoreView{};
  }

  template <typename R>
  static void expect_same_records(const std::vector<R> &got, const std::vector<R> &want, const char *what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < want.size(); i++)
      EXPECT_EQ(0, std::memcmp(&got[i], &want[i], sizeof(R))) << what << " record " << i << " differs";
  }

  // Each record's blob `blob` reads back as written.
  template <class Table, class R>
  static void expect_blobs(const Table &t, BlobRef R::*blob, const std::vector<std::vector<u8>> &blobs) {
    for (size_t i = 0; i < t.records.size(); i++) {
      auto b = t.blob(t.records[i].*blob);
      ASSERT_TRUE(b);
      EXPECT_EQ(bytes_str(*b), bytes_str(blobs[i]));
    }
  }
  // Each record's string `path` and blob `blob` read back as written.
  template <class Table, class R>
  static void expect_paths_and_blobs(const Table &t, StrRef R::*path, BlobRef R::*blob,
                                     const std::vector<std::string> &paths, const std::vector<std::vector<u8>> &blobs) {
    for (size_t i = 0; i < t.records.size(); i++) EXPECT_EQ(t.str_or_empty(t.records[i].*path), paths[i]);
    expect_blobs(t, blob, blobs);
  }

  static Fixture *fixture_;
  static int memfd_;
  static ImageLayout *layout_;
  static std::vector<u8> *bytes_;
  static ImageReader *reader_;
};

Fixture *RoundTrip::fixture_ = nullptr;
int RoundTrip::memfd_ = -1;
ImageLayout *RoundTrip::layout_ = nullptr;
std::vector<u8> *RoundTrip::bytes_ = nullptr;
ImageReader *RoundTrip::reader_ = nullptr;

}  // namespace

// ---- Standard core notes --------------------------------------------------

TEST_F(RoundTrip, NoteOrderAndOwners) {
  // image_notes.h: NT_PRPSINFO; per thread NT_PRSTATUS, NT_FPREGSET,
  // NT_X86_XSTATE, with NT_SIGINFO right after the first thread's; NT_AUXV;
  // NT_FILE; CKPT tables in type order.
  std::vector<std::pair<std::string, u32>> want = {{"CORE", kNtPrpsinfo}};
  for (int t = 0; t < kThreads; t++) {
    want.push_back({"CORE", kNtPrstatus});
    if (t != 2) want.push_back({"CORE", kNtFpregset});
    if (t != 1) want.push_back({"LINUX", kNtX86Xstate});
    if (t == 0) want.push_back({"CORE", kNtSiginfo});
  }
  want.push_back({"CORE", kNtAuxv});
  want.push_back({"CORE", kNtFile});
  for (u32 t = 0x434b0001; t <= 0x434b000e; t++) want.push_back({"CKPT", t});
  want.push_back({"CKPT", static_cast<u32>(CkptNote::StoredFiles)});
  want.push_back({"CKPT", static_cast<u32>(CkptNote::Locks)});
  want.push_back({"CKPT", static_cast<u32>(CkptNote::GuardRanges)});
  std::vector<std::pair<std::string, u32>> got;
  for (const NoteRef &n : reader_->notes())
    if (n.phdr == 0) got.push_back({std::string(n.owner), n.type});
  EXPECT_EQ(got, want);
  // And exactly the bytes ImageNotes encoded, in that order.
  auto notes = fixture_->notes.encode();
  size_t i = 0;
  for (const NoteRef &n : reader_->notes()) {
    if (n.phdr != 0) continue;
    ASSERT_LT(i, notes.size());
    EXPECT_EQ(n.owner, notes[i].owner);
    EXPECT_EQ(n.type, notes[i].type);
    EXPECT_EQ(std::vector<u8>(n.desc.begin(), n.desc.end()), notes[i].desc) << "note " << i;
    EXPECT_EQ(n.index, i);
    i++;
  }
  EXPECT_EQ(i, notes.size());
}

TEST_F(RoundTrip, Prpsinfo) {
  CoreView c = core();
  ASSERT_TRUE(c.psinfo.has_value());
  EXPECT_EQ(0, std::memcmp(&*c.psinfo, &*fixture_->notes.psinfo, sizeof(PrPsInfo)));
}

TEST_F(RoundTrip, PrstatusPerThread) {
  CoreView c = core();
  ASSERT_EQ(c.threads.size(), size_t(kThreads));
  for (int t = 0; t < kThreads; t++) {
    EXPECT_EQ(0, std::memcmp(&c.threads[t].prstatus, &fixture_->notes.threads[t].prstatus, sizeof(PrStatus)))
        << "thread " << t;
    EXPECT_EQ(c.threads[t].prstatus.pr_pid, kPid + t);
  }
}

TEST_F(RoundTrip, FpregsetBelongsToItsThread) {
  CoreView c = core();
  ASSERT_EQ(c.threads.size(), size_t(kThreads));
  for (int t = 0; t < kThreads; t++)
    EXPECT_EQ(bytes_str(c.threads[t].fpregs), bytes_str(fixture_->notes.threads[t].fpregs)) << "thread " << t;
  EXPECT_TRUE(c.threads[2].fpregs.empty());
}

TEST_F(RoundTrip, X86XstateBelongsToItsThread) {
  CoreView c = core();
  ASSERT_EQ(c.threads.size(), size_t(kThreads));
  for (int t = 0; t < kThreads; t++)
    EXPECT_EQ(bytes_str(c.threads[t].xstate), bytes_str(fixture_->notes.threads[t].xstate)) << "thread " << t;
  EXPECT_TRUE(c.threads[1].xstate.empty());
  EXPECT_EQ(c.threads[2].xstate.size(), 2696u);
}

TEST_F(RoundTrip, Siginfo) {
  CoreView c = core();
  EXPECT_EQ(bytes_str(c.siginfo), bytes_str(fixture_->notes.siginfo));
}

TEST_F(RoundTrip, Auxv) {
  CoreView c = core();
  EXPECT_EQ(c.auxv, fixture_->notes.auxv);
}

TEST_F(RoundTrip, NtFile) {
  CoreView c = core();
  ASSERT_EQ(c.files.size(), fixture_->notes.files.size());
  for (size_t i = 0; i < c.files.size(); i++) {
    const FileMapping &g = c.files[i], &w = fixture_->notes.files[i];
    EXPECT_EQ(g.start, w.start) << i;
    EXPECT_EQ(g.end, w.end) << i;
    EXPECT_EQ(g.offset, w.offset) << i;
    EXPECT_EQ(g.path, w.path) << i;
  }
}

TEST(NtFileCodec, EmptyAndMalformed) {
  Note n = make_nt_file({});
  auto d = decode_nt_file(n.desc);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_TRUE(d->empty());
  // Count larger than the note can hold.
  Note one = make_nt_file({{0x1000, 0x2000, 0, "/x"}});
  auto bad = one.desc;
  u64 huge = u64(1) << 60;
  std::memcpy(bad.data(), &huge, 8);
  EXPECT_FALSE(decode_nt_file(bad));
  // Missing NUL.
  bad = one.desc;
  bad.pop_back();
  EXPECT_FALSE(decode_nt_file(bad));
  // Page size not a power of two.
  bad = one.desc;
  u64 ps = 3000;
  std::memcpy(bad.data() + 8, &ps, 8);
  EXPECT_FALSE(decode_nt_file(bad));
  // end < start.
  bad = one.desc;
  u64 end = 0x800;
  std::memcpy(bad.data() + 24, &end, 8);
  EXPECT_FALSE(decode_nt_file(bad));
  EXPECT_FALSE(decode_nt_file(std::span<const u8>(one.desc).first(15)));
}

// ---- CKPT tables ------------------------------------------------------------

TEST_F(RoundTrip, Identity) {
  CkptView v = ckpt();
  expect_same_records(v.identity_table.records, fixture_->notes.identity.records, "identity");
  EXPECT_EQ(0, std::memcmp(&v.identity, &fixture_->notes.identity.records[0], sizeof(IdentityRecord)));
  EXPECT_EQ(v.identity_table.str_or_empty(v.identity.kernel_release), "6.1.0-roundtrip");
  EXPECT_EQ(v.identity_table.str_or_empty(v.identity.hostname), "host.example");
  EXPECT_EQ(v.identity_table.str_or_empty(v.identity.writer), "roundtrip test");
  EXPECT_EQ(v.identity_table.version, 1u);
}

TEST_F(RoundTrip, Tasks) {
  CkptView v = ckpt();
  expect_same_records(v.tasks.records, fixture_->notes.tasks.records, "task");
  ASSERT_EQ(v.tasks.records.size(), 2u);
  for (size_t p = 0; p < 2; p++) {
    const TaskRecord &t = v.tasks.records[p];
    EXPECT_EQ(v.tasks.str_or_empty(t.comm), fixture_->task_strings[4 * p + 0]);
    EXPECT_EQ(v.tasks.str_or_empty(t.cwd), fixture_->task_strings[4 * p + 1]);
    EXPECT_EQ(v.tasks.str_or_empty(t.root), fixture_->task_strings[4 * p + 2]);
    EXPECT_EQ(v.tasks.str_or_empty(t.exe), fixture_->task_strings[4 * p + 3]);
    EXPECT_EQ(v.tasks.str_or_empty(t.cgroup), "0::/test.slice/" + std::to_string(p));
    auto g = v.tasks.blob(t.groups);
    ASSERT_TRUE(g);
    EXPECT_EQ(bytes_str(*g), bytes_str(fixture_->task_groups[p]));
    auto a = v.tasks.blob(t.auxv);
    ASSERT_TRUE(a);
    EXPECT_EQ(bytes_str(*a), bytes_str(fixture_->task_auxv[p]));
  }
}

TEST_F(RoundTrip, Threads) {
  CkptView v = ckpt();
  expect_same_records(v.threads.records, fixture_->notes.thread_records.records, "thread");
  for (size_t i = 0; i < v.threads.records.size(); i++)
    EXPECT_EQ(v.threads.str_or_empty(v.threads.records[i].comm), fixture_->thread_names[i]);
}

TEST_F(RoundTrip, Vmas) {
  CkptView v = ckpt();
  expect_same_records(v.vmas.records, fixture_->notes.vmas.records, "vma");
  ASSERT_NO_FATAL_FAILURE(
      expect_paths_and_blobs(v.vmas, &VmaRecord::path, &VmaRecord::build_id, fixture_->vma_paths, fixture_->vma_build_ids));
}

TEST_F(RoundTrip, PageRanges) {
  CkptView v = ckpt();
  expect_same_records(v.ranges.records, fixture_->notes.ranges.records, "page range");
  // Each Image range reads back the bytes that were written for it.
  for (const PageRangeRecord &r : v.ranges.records) {
    if (r.source != static_cast<u32>(PageSource::Image)) continue;
    auto seg = reader_->segment_bytes(r.segment);
    const Elf64_Phdr &ph = reader_->phdrs()[r.segment];
    size_t idx = r.segment - 1;
    ASSERT_LT(idx, fixture_->data.size());
    u64 off = r.start - ph.p_vaddr;
    EXPECT_EQ(0, std::memcmp(seg.data() + off, fixture_->data[idx].data() + off, r.length));
  }
}

TEST_F(RoundTrip, Fds) {
  CkptView v = ckpt();
  expect_same_records(v.fds.records, fixture_->notes.fds.records, "fd");
  ASSERT_NO_FATAL_FAILURE(
      expect_paths_and_blobs(v.fds, &FdRecord::path, &FdRecord::content, fixture_->fd_paths, fixture_->fd_contents));
}

TEST_F(RoundTrip, Pipes) {
  CkptView v = ckpt();
  expect_same_records(v.pipes.records, fixture_->notes.pipes.records, "pipe");
  ASSERT_NO_FATAL_FAILURE(expect_blobs(v.pipes, &PipeRecord::data, fixture_->pipe_data));
}

TEST_F(RoundTrip, SigActions) {
  expect_same_records(ckpt().sigactions.records, fixture_->notes.sigactions.records, "sigaction");
}
TEST_F(RoundTrip, PendingSignals) {
  expect_same_records(ckpt().pending.records, fixture_->notes.pending.records, "pending signal");
}
TEST_F(RoundTrip, Timers) { expect_same_records(ckpt().timers.records, fixture_->notes.timers.records, "timer"); }
TEST_F(RoundTrip, Rlimits) { expect_same_records(ckpt().rlimits.records, fixture_->notes.rlimits.records, "rlimit"); }
TEST_F(RoundTrip, Tree) { expect_same_records(ckpt().tree.records, fixture_->notes.tree.records, "tree"); }

TEST_F(RoundTrip, Parent) {
  CkptView v = ckpt();
  ASSERT_TRUE(v.parent.has_value());
  expect_same_records(v.parent->records, fixture_->notes.parent.records, "parent");
  EXPECT_EQ(v.parent->str_or_empty(v.parent->records[0].path_hint), "../previous.ckpt");
}

TEST_F(RoundTrip, StoredFiles) {
  const CkptView &v = ckpt();
  expect_same_records(v.stored_files.records, fixture_->notes.stored_files.records, "stored file");
  ASSERT_EQ(v.stored_files.records.size(), 1u);
  EXPECT_EQ(v.stored_files.str_or_empty(v.stored_files.records[0].path), "/dev/shm/stored");
  auto bytes = v.stored_files.blob(v.stored_files.records[0].content);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(std::string(bytes->begin(), bytes->end()), "abc");
}

TEST_F(RoundTrip, Locks) { expect_same_records(ckpt().locks.records, fixture_->notes.locks.records, "lock"); }
TEST_F(RoundTrip, GuardRanges) {
  expect_same_records(ckpt().guard_ranges.records, fixture_->notes.guard_ranges.records, "guard range");
}

TEST_F(RoundTrip, SeccompFilters) {
  CkptView v = ckpt();
  expect_same_records(v.seccomp_filters.records, fixture_->notes.seccomp_filters.records, "seccomp filter");
  ASSERT_NO_FATAL_FAILURE(expect_blobs(v.seccomp_filters, &SeccompFilterRecord::program, fixture_->seccomp_programs));
}

// decode_ckpt's checks of the seccomp filters against their threads: each
// breakage alone is an error naming it.
TEST(SeccompFilterChecks, InconsistentFiltersAreRejected) {
  struct Case {
    const char *name;
    const char *error;
    void (*breakage)(ThreadRecord &, std::vector<SeccompFilterRecord> &);
  };
  const Case cases[] = {
      {"valid", "", [](ThreadRecord &, std::vector<SeccompFilterRecord> &) {}},
      {"not in filter mode", "not in filter mode",
       [](ThreadRecord &t, std::vector<SeccompFilterRecord> &) { t.seccomp_mode = 1; }},
      {"unknown mode", "unknown seccomp mode",
       [](ThreadRecord &t, std::vector<SeccompFilterRecord> &) { t.seccomp_mode = 3; }},
      {"one missing", "the image has 1",
       [](ThreadRecord &, std::vector<SeccompFilterRecord> &f) { f.pop_back(); }},
      {"count beyond the note", "the image has 2",
       [](ThreadRecord &t, std::vector<SeccompFilterRecord> &) { t.seccomp_filter_count = 3; }},
      {"position twice", "second filter at this position",
       [](ThreadRecord &, std::vector<SeccompFilterRecord> &f) { f[1].position = 0; }},
      {"position beyond", "beyond the thread's filter count",
       [](ThreadRecord &, std::vector<SeccompFilterRecord> &f) { f[1].position = 2; }},
      {"unknown tid", "no thread has this tid",
       [](ThreadRecord &, std::vector<SeccompFilterRecord> &f) { f[0].tid = 99; }},
      {"unknown flag", "unknown filter flags",
       [](ThreadRecord &, std::vector<SeccompFilterRecord> &f) { f[0].flags = 1; }},
      {"partial instruction", "not 1 to 4096 instructions",
       [](ThreadRecord &, std::vector<SeccompFilterRecord> &f) { f[0].program.length = 12; }},
      {"empty program", "not 1 to 4096 instructions",
       [](ThreadRecord &, std::vector<SeccompFilterRecord> &f) { f[0].program.length = 0; }},
  };
  for (const Case &c : cases) {
    ImageNotes n;
    IdentityRecord id{};
    n.identity.add(id);
    ThreadRecord t{};
    t.tid = t.pid = 10;
    t.flags = kThreadPrivileges;
    t.seccomp_mode = static_cast<u32>(SeccompMode::Filter);
    t.seccomp_filter_count = 2;
    std::vector<u8> prog(16, 0x06);
    std::vector<SeccompFilterRecord> filters = {{10, 10, 0, 0, n.seccomp_filters.add_blob(prog)},
                                                {10, 10, 1, kSeccompFilterFlagLog, n.seccomp_filters.add_blob(prog)}};
    c.breakage(t, filters);
    n.thread_records.add(t);
    for (const SeccompFilterRecord &f : filters) n.seccomp_filters.add(f);
    auto w = ImageWriter::create(n.encode(), {});
    ASSERT_TRUE(w) << w.error().message();
    int fd = memfd_create("seccomp", MFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(w->begin(fd));
    ASSERT_TRUE(w->finish());
    std::vector<u8> bytes = read_fd_all(fd);
    close(fd);
    auto r = ImageReader::from_bytes(bytes);
    ASSERT_TRUE(r) << r.error().message();
    auto v = decode_ckpt(*r);
    if (!*c.error) {
      EXPECT_TRUE(v) << c.name << ": " << v.error().message();
    } else {
      ASSERT_FALSE(v) << c.name << ": accepted";
      EXPECT_NE(v.error().message().find(c.error), std::string::npos) << c.name << ": " << v.error().message();
    }
  }
}

TEST_F(RoundTrip, EmptyTablesAreOmitted) {
  ImageNotes n;
  IdentityRecord id{};
  n.identity.add(id);
  auto notes = n.encode();
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].owner, "CKPT");
  EXPECT_EQ(notes[0].type, static_cast<u32>(CkptNote::Identity));
}

// ---- Memory ----------------------------------------------------------------

TEST_F(RoundTrip, SegmentBytes) {
  const auto &ph = reader_->phdrs();
  ASSERT_EQ(ph.size(), fixture_->segments.size() + 2);
  for (size_t i = 0; i < fixture_->segments.size(); i++) {
    const SegmentPlan &s = fixture_->segments[i];
    const Elf64_Phdr &p = ph[i + 1];
    EXPECT_EQ(p.p_type, u32(PT_LOAD));
    EXPECT_EQ(p.p_vaddr, s.vaddr);
    EXPECT_EQ(p.p_memsz, s.memsz);
    EXPECT_EQ(p.p_filesz, s.filesz);
    EXPECT_EQ(p.p_flags, s.flags);
    EXPECT_EQ(p.p_align, kPageSize);
    EXPECT_EQ(bytes_str(reader_->segment_bytes(i + 1)), bytes_str(fixture_->data[i])) << "segment " << i;
    if (s.filesz) {
      auto m = reader_->read_memory(s.vaddr, s.filesz);
      ASSERT_TRUE(m) << m.error().message();
      EXPECT_EQ(*m, fixture_->data[i]);
    }
    if (s.filesz < s.memsz) {
      EXPECT_FALSE(reader_->read_memory(s.vaddr + s.filesz, 1)) << "not stored: must fail";
    }
  }
  EXPECT_FALSE(reader_->read_memory(0x500000, 1)) << "unmapped address";
  // A read spanning two adjacent stored segments.
  auto m = reader_->read_memory(0x400ff0, 0x20);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(0, std::memcmp(m->data(), fixture_->data[0].data() + 0xff0, 0x10));
  EXPECT_EQ(0, std::memcmp(m->data() + 0x10, fixture_->data[1].data(), 0x10));
}

// ---- File layout -------------------------------------------------------------

TEST_F(RoundTrip, Layout) {
  const auto &ph = reader_->phdrs();
  const Elf64_Ehdr &eh = reader_->ehdr();
  EXPECT_EQ(eh.e_type, ET_CORE);
  EXPECT_EQ(eh.e_machine, EM_X86_64);
  EXPECT_EQ(eh.e_phoff, kPhdrOffset);  // 64..127 reserved for the exec form (FORMAT.md §12.3)
  EXPECT_EQ(eh.e_phnum, ph.size());
  EXPECT_EQ(eh.e_shnum, 0);
  EXPECT_EQ(eh.e_shoff, 0u);
  EXPECT_TRUE(reader_->has_ckpt_marker());
  EXPECT_EQ(reader_->format_major(), kFormatMajor);
  EXPECT_EQ(0, std::memcmp(eh.e_ident + kIdentMarkerOffset, "CKPT", 4));

  // PT_NOTE first, right after the program headers.
  ASSERT_GE(ph.size(), 2u);
  EXPECT_EQ(ph[0].p_type, u32(PT_NOTE));
  EXPECT_EQ(ph[0].p_offset, eh.e_phoff + ph.size() * sizeof(Elf64_Phdr));
  EXPECT_EQ(ph[0].p_vaddr, 0u);
  EXPECT_TRUE(ph[0].p_align == 0 || ph[0].p_align == 4) << ph[0].p_align;
  // The zero block (for zero segments) right after the notes' page.
  ASSERT_NE(layout_->zero_block_offset, 0u);
  EXPECT_EQ(layout_->zero_block_offset, (ph[0].p_offset + ph[0].p_filesz + kPageSize - 1) / kPageSize * kPageSize);
  EXPECT_EQ(layout_->zero_block_size, 0x3000u) << "the largest zero segment, page-rounded";
  // Loads sorted, page-aligned offsets, after the notes, in file order;
  // zero segments all read the zero block.
  u64 prev_vaddr = 0, prev_file_end = layout_->zero_block_offset + layout_->zero_block_size;
  for (size_t i = 1; i + 1 < ph.size(); i++) {
    EXPECT_EQ(ph[i].p_type, u32(PT_LOAD)) << i;
    EXPECT_GE(ph[i].p_vaddr, prev_vaddr) << i;
    prev_vaddr = ph[i].p_vaddr + ph[i].p_memsz;
    EXPECT_EQ(ph[i].p_offset % kPageSize, 0u) << i;
    if (fixture_->segments[i - 1].zero) {
      EXPECT_EQ(ph[i].p_offset, layout_->zero_block_offset) << i;
      EXPECT_EQ(ph[i].p_filesz, ph[i].p_memsz) << i;
    } else if (ph[i].p_filesz) {
      EXPECT_GE(ph[i].p_offset, prev_file_end) << i;
      prev_file_end = ph[i].p_offset + ph[i].p_filesz;
    }
  }
  for (u64 i = layout_->zero_block_offset; i < layout_->zero_block_offset + layout_->zero_block_size; i++)
    ASSERT_EQ((*bytes_)[i], 0) << i;
  // The last PT_NOTE holds only the Integrity note, and the file ends there.
  const Elf64_Phdr &last = ph.back();
  EXPECT_EQ(last.p_type, u32(PT_NOTE));
  EXPECT_GE(last.p_offset, prev_file_end);
  std::vector<const NoteRef *> in_last;
  for (const NoteRef &n : reader_->notes())
    if (n.phdr == ph.size() - 1) in_last.push_back(&n);
  ASSERT_EQ(in_last.size(), 1u);
  EXPECT_EQ(in_last[0]->owner, "CKPT");
  EXPECT_EQ(in_last[0]->type, static_cast<u32>(CkptNote::Integrity));
  EXPECT_EQ(in_last[0]->size, last.p_filesz);
  EXPECT_EQ(last.p_offset + last.p_filesz, bytes_->size());
  // Only two PT_NOTEs; the integrity note appears nowhere else.
  EXPECT_EQ(reader_->find_notes("CKPT", static_cast<u32>(CkptNote::Integrity)).size(), 1u);

  // The plan the writer announced is what it wrote.
  EXPECT_EQ(layout_->phnum, ph.size());
  EXPECT_EQ(layout_->phdr_offset, eh.e_phoff);
  EXPECT_EQ(layout_->notes_offset, ph[0].p_offset);
  EXPECT_EQ(layout_->notes_size, ph[0].p_filesz);
  ASSERT_EQ(layout_->segment_offsets.size(), fixture_->segments.size());
  for (size_t i = 0; i < fixture_->segments.size(); i++)
    EXPECT_EQ(layout_->segment_offsets[i], ph[ImageLayout::phdr_index_of_segment(i)].p_offset);
  EXPECT_EQ(layout_->shdr_offset, 0u);
  EXPECT_EQ(layout_->integrity_offset, last.p_offset);
  EXPECT_EQ(layout_->integrity_size, last.p_filesz);
  EXPECT_EQ(layout_->total_size, bytes_->size());
  // Padding between the notes and the first segment is zeros.
  for (u64 i = ph[0].p_offset + ph[0].p_filesz; i < ph[1].p_offset; i++) ASSERT_EQ((*bytes_)[i], 0) << i;
}

TEST_F(RoundTrip, ZerosBecomeHolesInRegularFiles) {
  // memfd is a regular (shmem) file: the zero block and write_zeros' run
  // are holes, not written blocks. SEEK_DATA from the start of a hole
  // lands past it.
  off_t zb = static_cast<off_t>(layout_->zero_block_offset);
  off_t data = lseek(memfd_, zb, SEEK_DATA);
  ASSERT_GE(data, 0) << strerror(errno);
  EXPECT_GE(data, zb + static_cast<off_t>(layout_->zero_block_size)) << "zero block was written, not skipped";
  const Elf64_Phdr *p6 = nullptr;
  for (const auto &ph : reader_->phdrs())
    if (ph.p_type == PT_LOAD && ph.p_vaddr == 0x7f0000500000) p6 = &ph;
  ASSERT_NE(p6, nullptr);
  off_t run = static_cast<off_t>(p6->p_offset + 0x1000);
  data = lseek(memfd_, run, SEEK_DATA);
  ASSERT_GE(data, 0);
  EXPECT_EQ(data, run + 0x2000) << "write_zeros' run was written, not skipped";
}

TEST_F(RoundTrip, ReusedFileWithOldContentStillVerifies) {
  // Writing over a regular file that already has bytes (no O_TRUNC, e.g. a
  // reused path): where the writer skips zeros, the old bytes must not show
  // through. After truncating to the image size, the image must verify.
  int fd = memfd_create("reused", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::vector<u8> junk(bytes_->size() + 8192, 0xa5);
  ASSERT_EQ(write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
  Status s = write_fixture(*fixture_, fd, 1 << 20);
  ASSERT_TRUE(s) << s.error().message();
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(bytes_->size())), 0);
  std::vector<u8> got = read_fd_all(fd);
  close(fd);
  auto r = ImageReader::from_bytes(got);
  ASSERT_TRUE(r) << r.error().message();
  Status v = verify_integrity(*r);
  EXPECT_TRUE(v) << v.error().message();
  EXPECT_TRUE(got == *bytes_) << "image differs from one written to an empty file";
}

TEST_F(RoundTrip, IntegrityVerifies) {
  Status s = verify_integrity(*reader_);
  EXPECT_TRUE(s) << s.error().message();
}

// The zero block is memory: the check a lazy restore makes (no
// check_memory) does not read it, as it does not read the segments; the
// full check finds a byte there that is not zero.
TEST_F(RoundTrip, ZeroBlockIsReadOnlyWithMemory) {
  ASSERT_NE(layout_->zero_block_offset, 0u);
  std::vector<u8> damaged = *bytes_;
  damaged[layout_->zero_block_offset + 100] = 1;
  auto r = ImageReader::from_bytes(damaged);
  ASSERT_TRUE(r) << r.error().message();
  Status without_memory = verify_integrity(*r, false);
  EXPECT_TRUE(without_memory) << without_memory.error().message();
  Status with_memory = verify_integrity(*r, true);
  ASSERT_FALSE(with_memory);
  EXPECT_NE(with_memory.error().message().find("zero block"), std::string::npos) << with_memory.error().message();
}

TEST_F(RoundTrip, OpenFromPathMatchesFromBytes) {
  std::string path = "/proc/self/fd/" + std::to_string(memfd_);
  auto r = ImageReader::open(path);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(bytes_str(r->bytes()), bytes_str(*bytes_));
  ASSERT_EQ(r->phdrs().size(), reader_->phdrs().size());
  EXPECT_EQ(0, std::memcmp(r->phdrs().data(), reader_->phdrs().data(), r->phdrs().size() * sizeof(Elf64_Phdr)));
  ASSERT_EQ(r->notes().size(), reader_->notes().size());
  for (size_t i = 0; i < r->notes().size(); i++) {
    EXPECT_EQ(r->notes()[i].offset, reader_->notes()[i].offset);
    EXPECT_EQ(r->notes()[i].type, reader_->notes()[i].type);
  }
  Status s = verify_integrity(*r);
  EXPECT_TRUE(s) << s.error().message();
  auto v = decode_ckpt(*r);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->rlimits.records.size(), 16u);
}

TEST_F(RoundTrip, WriterNeverSeeksPipe) {
  // The same image written into a pipe from another thread must be
  // byte-identical to the memfd one. A pipe cannot seek, so any lseek or
  // pwrite in the writer would fail (ESPIPE).
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  std::string writer_error;
  std::thread writer([&] {
    Status s = write_fixture(*fixture_, p[1], 77777);
    if (!s) writer_error = s.error().message();
    close(p[1]);
  });
  std::vector<u8> got;
  char buf[65536];
  for (;;) {
    ssize_t n = read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.insert(got.end(), buf, buf + n);
  }
  writer.join();
  close(p[0]);
  EXPECT_EQ(writer_error, "");
  ASSERT_EQ(got.size(), bytes_->size());
  EXPECT_TRUE(got == *bytes_) << "pipe output differs from the memfd output";
  auto r = ImageReader::from_bytes(got);
  ASSERT_TRUE(r) << r.error().message();
  Status s = verify_integrity(*r);
  EXPECT_TRUE(s) << s.error().message();
}

TEST_F(RoundTrip, ChunkSizeDoesNotMatter) {
  for (size_t chunk : {size_t(1) << 30, size_t(4096), size_t(1)}) {
    if (chunk == 1) {
      // One byte at a time through the smallest segment only would be slow;
      // a fixture with small segments keeps it quick.
      Fixture f = make_fixture();
      f.segments.erase(f.segments.begin() + 3);
      f.data.erase(f.data.begin() + 3);
      f.notes.vmas.records.clear();
      f.notes.ranges.records.clear();
      int fd = memfd_create("chunk", MFD_CLOEXEC);
      ASSERT_GE(fd, 0);
      Status s = write_fixture(f, fd, 1);
      ASSERT_TRUE(s) << s.error().message();
      int fd2 = memfd_create("chunk2", MFD_CLOEXEC);
      s = write_fixture(f, fd2, 1 << 20);
      ASSERT_TRUE(s) << s.error().message();
      EXPECT_TRUE(read_fd_all(fd) == read_fd_all(fd2));
      close(fd);
      close(fd2);
      continue;
    }
    int fd = memfd_create("chunk", MFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    Status s = write_fixture(*fixture_, fd, chunk);
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_TRUE(read_fd_all(fd) == *bytes_) << "chunk " << chunk;
    close(fd);
  }
}

TEST_F(RoundTrip, ValidatesAsARestorableImage) {
  // The fixture is deliberately odd (thread 2 has no FPREGSET), so use the
  // synthetic image for the whole-image validation.
  auto bytes = ckpt::test::encode_image(ckpt::test::make_synthetic());
  ASSERT_FALSE(bytes.empty());
  auto r = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(r) << r.error().message();
  Status s = ckpt::reader::validate_one(*r);
  EXPECT_TRUE(s) << s.error().message();
  // ...and the fixture is refused for exactly that reason.
  Status f = ckpt::reader::validate_one(*reader_);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message().find("NT_FPREGSET"), std::string::npos) << f.error().message();
}

// ---- PN_XNUM ---------------------------------------------------------------

TEST(PnXnum, ManySegmentsUseSectionZero) {
  ckpt::test::SyntheticOptions o;
  o.extra_segments = 65540;
  auto im = ckpt::test::make_synthetic(o);
  const size_t want_phnum = im.segments.size() + 2;
  ASSERT_GE(want_phnum, size_t(0xffff));
  auto bytes = ckpt::test::encode_image(im);
  ASSERT_FALSE(bytes.empty());

  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof eh);
  EXPECT_EQ(eh.e_phnum, 0xffff);
  EXPECT_EQ(eh.e_shnum, 1);
  EXPECT_EQ(eh.e_shentsize, sizeof(Elf64_Shdr));
  EXPECT_EQ(eh.e_shstrndx, 0);
  ASSERT_NE(eh.e_shoff, 0u);
  ASSERT_LE(eh.e_shoff + sizeof(Elf64_Shdr), bytes.size());
  EXPECT_EQ(eh.e_shoff % 8, 0u);
  Elf64_Shdr sh0;
  std::memcpy(&sh0, bytes.data() + eh.e_shoff, sizeof sh0);
  EXPECT_EQ(sh0.sh_info, want_phnum);
  EXPECT_EQ(sh0.sh_type, u32(SHT_NULL));
  EXPECT_EQ(sh0.sh_size, 0u);
  EXPECT_EQ(sh0.sh_link, 0u);

  auto r = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(r) << r.error().message();
  const auto &ph = r->phdrs();
  ASSERT_EQ(ph.size(), want_phnum);
  EXPECT_EQ(ph.front().p_type, u32(PT_NOTE));
  EXPECT_EQ(ph.back().p_type, u32(PT_NOTE));
  EXPECT_EQ(ph.front().p_offset, kPhdrOffset + want_phnum * sizeof(Elf64_Phdr));
  // The section header sits after the data and before the integrity note,
  // and the file ends at the integrity note.
  EXPECT_LT(eh.e_shoff, ph.back().p_offset);
  EXPECT_EQ(ph.back().p_offset + ph.back().p_filesz, bytes.size());
  for (size_t i = 1; i + 1 < ph.size(); i++) {
    ASSERT_EQ(ph[i].p_type, u32(PT_LOAD)) << i;
    if (i <= im.segments.size()) {
      ASSERT_EQ(ph[i].p_vaddr, im.segments[i - 1].vaddr) << i;
      ASSERT_EQ(ph[i].p_memsz, im.segments[i - 1].memsz) << i;
      ASSERT_EQ(ph[i].p_filesz, im.segments[i - 1].filesz) << i;
    }
  }
  Status s = verify_integrity(*r);
  EXPECT_TRUE(s) << s.error().message();
  auto v = decode_ckpt(*r);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->vmas.records.size(), 4u);
  auto c = decode_core(*r);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->threads.size(), 3u);
  Status vs = ckpt::reader::validate_one(*r);
  EXPECT_TRUE(vs) << vs.error().message();
  auto m = r->read_memory(0x10000000, 16);
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)[1], 7);
}

TEST(PnXnum, ThresholdIsExact) {
  // 0xfffe headers fit e_phnum; 0xffff need PN_XNUM (the value itself is
  // reserved).
  std::vector<Note> notes;
  std::vector<SegmentPlan> segs;
  for (u64 i = 0; i < 0xfffe - 2; i++) segs.push_back({i * 0x1000, 0x1000, 0, PF_R});
  auto l = plan_layout(notes, segs);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->phnum, 0xfffeu);
  EXPECT_EQ(l->shdr_offset, 0u);
  segs.push_back({0xfffe0000ull * 0x10, 0x1000, 0, PF_R});
  l = plan_layout(notes, segs);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->phnum, 0xffffu);
  EXPECT_NE(l->shdr_offset, 0u);
}

// ---- Writer refusals ----------------------------------------------------------

TEST(WriterErrors, PlanRejectsBadSegments) {
  std::vector<Note> notes = {Note{"CKPT", 0x434b0001, std::vector<u8>(sizeof(TableHeader) + sizeof(IdentityRecord))}};
  auto expect_reject = [&](std::vector<SegmentPlan> segs, const char *why) {
    auto l = plan_layout(notes, segs);
    EXPECT_FALSE(l) << why;
    auto w = ImageWriter::create(notes, segs);
    EXPECT_FALSE(w) << why;
  };
  expect_reject({{0x2000, 0x1000, 0, PF_R}, {0x1000, 0x1000, 0, PF_R}}, "out of order");
  expect_reject({{0x1000, 0x2000, 0, PF_R}, {0x2000, 0x1000, 0, PF_R}}, "overlapping");
  expect_reject({{0x1000, 0x1000, 0, PF_R}, {0x1000, 0x1000, 0, PF_R}}, "duplicate");
  expect_reject({{0x1000, 0x1000, 0x1001, PF_R}}, "filesz > memsz");
  expect_reject({{~u64(0) - 0xfff, 0x2000, 0, PF_R}}, "wraps");
  expect_reject({{0x1800, 0x1000, 0, PF_R}}, "vaddr not page-aligned");
  expect_reject({{0x1000, 0, 0, PF_R}}, "empty segment");
  SegmentPlan zero{0x1000, 0x2000, 0x1000, PF_R};
  zero.zero = true;
  expect_reject({zero}, "zero segment with filesz != memsz");
  // Adjacent segments are fine, and so is filesz == memsz.
  EXPECT_TRUE(plan_layout(notes, {{0x1000, 0x1000, 0x1000, PF_R}, {0x2000, 0x1000, 0, PF_R}}));
  EXPECT_TRUE(plan_layout(notes, {}));
}

TEST(WriterErrors, TooFewBytesFailsFinish) {
  std::vector<SegmentPlan> segs = {{0x1000, 0x2000, 0x2000, PF_R}, {0x4000, 0x1000, 0x10, PF_R}};
  auto w = ImageWriter::create({}, segs);
  ASSERT_TRUE(w) << w.error().message();
  int fd = memfd_create("few", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(w->begin(fd));
  std::vector<u8> data(0x2000 + 0xf, 1);
  ASSERT_TRUE(w->write(data));
  Status s = w->finish();
  EXPECT_FALSE(s);
  close(fd);

  auto w2 = ImageWriter::create({}, segs);
  ASSERT_TRUE(w2);
  fd = memfd_create("none", MFD_CLOEXEC);
  ASSERT_TRUE(w2->begin(fd));
  EXPECT_FALSE(w2->finish()) << "no segment data at all";
  close(fd);
}

TEST(WriterErrors, TooManyBytesFailsWrite) {
  std::vector<SegmentPlan> segs = {{0x1000, 0x2000, 0x100, PF_R}, {0x4000, 0x1000, 0, PF_R}};
  auto w = ImageWriter::create({}, segs);
  ASSERT_TRUE(w);
  int fd = memfd_create("many", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(w->begin(fd));
  std::vector<u8> data(0x101, 1);
  EXPECT_FALSE(w->write(data));
  close(fd);

  // Exactly enough, then one more byte.
  auto w2 = ImageWriter::create({}, segs);
  ASSERT_TRUE(w2);
  fd = memfd_create("many2", MFD_CLOEXEC);
  ASSERT_TRUE(w2->begin(fd));
  ASSERT_TRUE(w2->write(std::span<const u8>(data).first(0x100)));
  u8 one = 0;
  EXPECT_FALSE(w2->write({&one, 1}));
  close(fd);

  // write_zeros past the end fails the same way.
  auto wz = ImageWriter::create({}, segs);
  ASSERT_TRUE(wz);
  fd = memfd_create("many-zeros", MFD_CLOEXEC);
  ASSERT_TRUE(wz->begin(fd));
  EXPECT_FALSE(wz->write_zeros(0x101));
  close(fd);

  // No segments with data at all.
  auto w3 = ImageWriter::create({}, {{0x1000, 0x1000, 0, PF_R}});
  ASSERT_TRUE(w3);
  fd = memfd_create("many3", MFD_CLOEXEC);
  ASSERT_TRUE(w3->begin(fd));
  EXPECT_FALSE(w3->write({&one, 1}));
  EXPECT_TRUE(w3->finish());
  close(fd);
}

TEST(WriterErrors, CallOrder) {
  auto w = ImageWriter::create({}, {{0x1000, 0x1000, 0x10, PF_R}});
  ASSERT_TRUE(w);
  u8 b[16] = {};
  EXPECT_FALSE(w->write(b)) << "write before begin";
  EXPECT_FALSE(w->finish()) << "finish before begin";
  int fd = memfd_create("order", MFD_CLOEXEC);
  ASSERT_TRUE(w->begin(fd));
  EXPECT_FALSE(w->begin(fd)) << "begin twice";
  close(fd);
}

TEST(WriterErrors, WriteFailureIsReported) {
  // A pipe whose read end is closed: write(2) fails with EPIPE (SIGPIPE is
  // ignored for this test) and the writer must say so instead of
  // pretending success.
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &old);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  close(p[0]);
  auto w = ImageWriter::create({}, {{0x1000, 0x1000, 0x10, PF_R}});
  ASSERT_TRUE(w);
  bool failed = !w->begin(p[1]);
  u8 b[16] = {};
  if (!failed) failed = !w->write(b);
  if (!failed) failed = !w->finish();
  EXPECT_TRUE(failed);
  close(p[1]);
  sigaction(SIGPIPE, &old, nullptr);
}
