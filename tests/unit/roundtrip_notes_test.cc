// Every note type through ImageNotes -> ImageWriter -> ImageReader ->
// decode_core / decode_ckpt, compared field by field (roundtrip_fixture.h).
#include <elf.h>

#include "roundtrip_fixture.h"

using namespace ckpt::img;
using namespace ckpt::img::roundtrip;

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
  ASSERT_NO_FATAL_FAILURE(expect_table(ckpt().vmas, fixture_->notes.vmas.records, "vma", &VmaRecord::path,
                                       &VmaRecord::build_id, fixture_->vma_paths, fixture_->vma_build_ids));
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
  ASSERT_NO_FATAL_FAILURE(expect_table(ckpt().fds, fixture_->notes.fds.records, "fd", &FdRecord::path,
                                       &FdRecord::content, fixture_->fd_paths, fixture_->fd_contents));
}

TEST_F(RoundTrip, Pipes) {
  ASSERT_NO_FATAL_FAILURE(
      expect_table(ckpt().pipes, fixture_->notes.pipes.records, "pipe", &PipeRecord::data, fixture_->pipe_data));
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
  ASSERT_NO_FATAL_FAILURE(expect_table(ckpt().seccomp_filters, fixture_->notes.seccomp_filters.records,
                                       "seccomp filter", &SeccompFilterRecord::program, fixture_->seccomp_programs));
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
