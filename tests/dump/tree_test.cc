// `imgtool dump` of a process tree (issue 9, dump side): the whole tree in
// one image, each further process a core of its own that the libimg reader,
// readelf, eu-stack and gdb open; identities shared across processes; a
// refusal anywhere names the process and leaves the tree as it was.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <optional>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

#include "dump_common.h"

namespace ckpt::dumptest {
namespace {

using json = nlohmann::json;
using namespace img;

struct TreePids {
  pid_t root, child1, child2, grandchild, zombie;
  unsigned long shared_addr;
};

TreePids pids_of(const Target &t) {
  return {t.pid(),
          static_cast<pid_t>(std::stol(t.value("child1"))),
          static_cast<pid_t>(std::stol(t.value("child2"))),
          static_cast<pid_t>(std::stol(t.value("grandchild"))),
          static_cast<pid_t>(std::stol(t.value("zombie"))),
          std::stoul(t.value("shared_addr"), nullptr, 16)};
}

void expect_tree_as_it_was(const TreePids &p) {
  for (pid_t pid : {p.root, p.child1, p.child2, p.grandchild}) expect_running_untraced(pid);
  EXPECT_EQ(proc_state(p.zombie), 'Z') << "the zombie was reaped or changed";
}

// Each test runs dump_tree on a shared file in tmp: start_tree() starts it
// (with a mode such as "churn") and reads its tree's pids into p.
class DumpTree : public ::testing::Test {
 protected:
  void start_tree(const char *mode = nullptr) {
    std::vector<std::string> argv = {DUMP_TREE_PATH, tmp.file("shared.txt")};
    if (mode) argv.push_back(mode);
    tree.emplace(argv);
    ASSERT_TRUE(tree->ready()) << tree->error();
    p = pids_of(*tree);
  }
  TempDir tmp;
  std::optional<Target> tree;
  TreePids p{};
};

// Every core of the image (the root's, then each embedded one) by pid.
struct Cores {
  ImageReader root;
  std::map<i32, ImageReader> embedded;
  std::map<i32, TreeRecord> records;
};

Cores open_cores(const std::string &path) {
  auto r = ImageReader::open(path);
  EXPECT_TRUE(r) << r.error().message();
  Cores c{std::move(*r), {}, {}};
  auto view = decode_ckpt(c.root);
  EXPECT_TRUE(view) << view.error().message();
  if (!view) return c;
  for (const TreeRecord &t : view->tree.records) {
    c.records[t.pid] = t;
    if (t.flags & kTreeZombie) continue;
    auto e = c.root.embedded(t);
    EXPECT_TRUE(e) << e.error().message();
    if (e) c.embedded.emplace(t.pid, std::move(*e));
  }
  return c;
}

TEST_F(DumpTree, ParentTwoChildrenGrandchildAndAZombie) {
  ASSERT_NO_FATAL_FAILURE(start_tree());
  std::string image = tmp.file("tree.ckpt");
  expect_success(dump(p.root, image));
  expect_tree_as_it_was(p);
  RunResult v = verify_intact(image);
  EXPECT_EQ(v.exit_code, 0) << v.status() << "\n" << v.err;

  // imgtool info shows the tree.
  RunResult info = test::run({imgtool(), "info", "--json", image});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  json j = json::parse(info.out);
  std::map<long, json> by_pid;
  for (const json &e : j["tree"]) by_pid[e["pid"].get<long>()] = e;
  ASSERT_EQ(by_pid.size(), 5u) << j["tree"].dump();
  EXPECT_EQ(j["tree"][0]["pid"], p.root);
  EXPECT_EQ(by_pid[p.child1]["ppid"], p.root);
  EXPECT_EQ(by_pid[p.child2]["ppid"], p.root);
  EXPECT_EQ(by_pid[p.grandchild]["ppid"], p.child1);
  EXPECT_EQ(by_pid[p.zombie]["state"], "zombie");
  EXPECT_EQ(by_pid[p.zombie]["exit_code"], 7);
  EXPECT_EQ(by_pid[p.grandchild]["state"], "running");
  EXPECT_EQ(by_pid[p.child1]["creator_tid"], p.root);
  EXPECT_EQ(by_pid[p.child2]["creator_tid"], std::stol(tree->value("forker_tid"))) << "forked by the second thread";
  EXPECT_EQ(j["processes"].size(), 4u);
  RunResult text = test::run({imgtool(), "info", image});
  EXPECT_NE(text.out.find("tree: 5 processes"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("zombie (exit 7)"), std::string::npos) << text.out;

  // Each embedded core opens with the libimg reader as its own process.
  Cores cores = open_cores(image);
  ASSERT_EQ(cores.embedded.size(), 3u);
  EXPECT_EQ(cores.records[p.zombie].wait_status, 7 << 8);
  EXPECT_TRUE(cores.records[p.zombie].flags & kTreeZombie);
  for (auto &[pid, core] : cores.embedded) {
    auto cv = decode_core(core);
    ASSERT_TRUE(cv) << cv.error().message();
    ASSERT_FALSE(cv->threads.empty());
    EXPECT_EQ(cv->threads[0].prstatus.pr_pid, pid);
    auto ck = decode_ckpt(core);
    ASSERT_TRUE(ck) << ck.error().message();
    EXPECT_EQ(ck->identity.root_pid, pid);
    EXPECT_EQ(ck->tasks.records.at(0).ppid, cores.records[pid].ppid);
  }

  // extract: standalone cores that readelf, eu-readelf and eu-stack accept,
  // and gdb --pid shows the child's own backtrace.
  struct Want {
    pid_t pid;
    const char *function;
  };
  for (Want w : {Want{p.child1, "child1_main"}, Want{p.grandchild, "grandchild_main"}}) {
    std::string core = tmp.file("core." + std::to_string(w.pid));
    RunResult x = test::run({imgtool(), "extract", image, "--pid", std::to_string(w.pid), "-o", core});
    ASSERT_EQ(x.exit_code, 0) << x.err;
    struct stat st {};
    ASSERT_EQ(stat(core.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    // The embedded core byte for byte, unless it takes pages shared
    // copy-on-write from an earlier core: extract puts those in (§9.23).
    auto own = decode_ckpt(cores.embedded.at(w.pid));
    ASSERT_TRUE(own) << own.error().message();
    if (own->cow_pages.records.empty()) EXPECT_EQ(u64(st.st_size), cores.records[w.pid].size);
    else EXPECT_GT(u64(st.st_size), cores.records[w.pid].size);
    for (std::vector<std::string> tool : {std::vector<std::string>{"readelf", "-h", "-l", "-n", core},
                                          std::vector<std::string>{"eu-readelf", "-h", "-l", "-n", core}}) {
      // binutils and elfutils are installed by scripts/setup.sh: missing
      // is a failure, not a check left out.
      ASSERT_FALSE(test::find_tool({tool[0]}).empty()) << tool[0] << " not found (scripts/setup.sh installs it)";
      RunResult r = test::run(tool);
      EXPECT_EQ(r.exit_code, 0) << tool[0] << ": " << r.err;
      EXPECT_EQ(r.err, "") << tool[0];
    }
    ASSERT_FALSE(test::find_tool({"eu-stack"}).empty()) << "eu-stack not found (scripts/setup.sh installs elfutils)";
    RunResult s = test::run({"eu-stack", "-e", DUMP_TREE_PATH, "--core", core});
    EXPECT_NE(s.out.find(w.function), std::string::npos) << s.out << s.err;
    RunResult g = run_merged({imgtool(), "gdb", image, "--pid", std::to_string(w.pid), "--", "-batch", "-ex", "bt",
                              "-ex", "ckpt tree"});
    EXPECT_EQ(g.exit_code, 0) << g.out;
    EXPECT_NE(g.out.find(w.function), std::string::npos) << g.out;
    EXPECT_NE(g.out.find("Processes in this image (5)"), std::string::npos) << g.out;
    EXPECT_NE(g.out.find("zombie, exit 7"), std::string::npos) << g.out;
  }
  // The root still looks to gdb exactly as a single-process image does.
  RunResult g = run_merged({imgtool(), "gdb", image, "--", "-batch", "-ex", "bt"});
  EXPECT_NE(g.out.find("in main"), std::string::npos) << g.out;
  // extract of the root: its own notes and memory alone, a single-process
  // image that verify, readelf, eu-stack and gdb open (DECISIONS 278).
  {
    std::string core = tmp.file("core.root");
    RunResult x = test::run({imgtool(), "extract", image, "--pid", std::to_string(p.root), "-o", core});
    ASSERT_EQ(x.exit_code, 0) << x.err;
    EXPECT_EQ(x.err, "");
    auto alone = ImageReader::open(core);
    ASSERT_TRUE(alone) << alone.error().message();
    auto av = decode_ckpt(*alone);
    ASSERT_TRUE(av) << av.error().message();
    auto rv = decode_ckpt(cores.root);
    ASSERT_TRUE(rv) << rv.error().message();
    EXPECT_EQ(av->identity.root_pid, p.root);
    EXPECT_EQ(av->identity.process_count, 1u);
    EXPECT_TRUE(av->tree.records.empty());
    EXPECT_EQ(av->vmas.records.size(), rv->vmas.records.size());
    EXPECT_EQ(av->threads.records.size(), rv->threads.records.size());
    EXPECT_LT(u64(alone->bytes().size()), u64(cores.root.bytes().size())) << "the other processes' cores came along";
    RunResult v = test::run({imgtool(), "verify", "--intact", core});
    EXPECT_EQ(v.exit_code, 0) << v.err;
    RunResult info = test::run({imgtool(), "info", "--json", core});
    ASSERT_EQ(info.exit_code, 0) << info.err;
    json ij = json::parse(info.out);
    EXPECT_EQ(ij["processes"].size(), 1u) << info.out;
    RunResult r = test::run({"eu-readelf", "-h", "-l", "-n", core});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    RunResult s = test::run({"eu-stack", "-e", DUMP_TREE_PATH, "--core", core});
    EXPECT_NE(s.out.find("main"), std::string::npos) << s.out << s.err;
    RunResult rg = run_merged({imgtool(), "gdb", core, "--", "-batch", "-ex", "bt"});
    EXPECT_NE(rg.out.find("in main"), std::string::npos) << rg.out;
  }
  RunResult z = test::run({imgtool(), "extract", image, "--pid", std::to_string(p.zombie), "-o", tmp.file("z")});
  EXPECT_NE(z.exit_code, 0);
  EXPECT_NE(z.err.find("zombie"), std::string::npos) << z.err;
  expect_tree_as_it_was(p);
}

// One open file description, one pipe (its bytes stored once) and one
// shared anonymous object across the tree.
TEST_F(DumpTree, SharedFileOffsetPipeAndMemoryGetOneIdentity) {
  ASSERT_NO_FATAL_FAILURE(start_tree());
  std::string image = tmp.file("tree.ckpt");
  expect_success(dump(p.root, image));
  Cores cores = open_cores(image);
  std::vector<ImageReader *> all = {&cores.root};
  for (auto &[pid, core] : cores.embedded) all.push_back(&core);
  ASSERT_EQ(all.size(), 4u);
  std::set<u32> file_ids, pipe_file_ids, pipe_ids, shm_inodes;
  std::vector<std::string> pipe_data;
  for (ImageReader *core : all) {
    auto v = decode_ckpt(*core);
    ASSERT_TRUE(v) << v.error().message();
    bool saw_file = false, saw_pipe = false, saw_shm = false;
    for (const FdRecord &f : v->fds.records) {
      if (f.fd == 5) {
        saw_file = true;
        file_ids.insert(f.file_id);
        EXPECT_EQ(f.pos, 5u);
      }
      if (f.fd == 3) {
        saw_pipe = true;
        pipe_ids.insert(f.pipe_id);
        pipe_file_ids.insert(f.file_id);
      }
    }
    for (const PipeRecord &pr : v->pipes.records) {
      auto data = v->pipes.blob(pr.data);
      ASSERT_TRUE(data);
      if (pipe_ids.count(pr.pipe_id)) pipe_data.emplace_back(data->begin(), data->end());
    }
    for (const VmaRecord &m : v->vmas.records)
      if (m.start == p.shared_addr) {
        saw_shm = true;
        EXPECT_EQ(m.kind, u32(VmaKind::SharedAnon));
        shm_inodes.insert(static_cast<u32>(m.ino));
      }
    EXPECT_TRUE(saw_file && saw_pipe && saw_shm) << "pid " << v->identity.root_pid;
  }
  EXPECT_EQ(file_ids.size(), 1u) << "fd 5 shares one open file description";
  EXPECT_EQ(pipe_ids.size(), 1u);
  EXPECT_EQ(pipe_file_ids.size(), 1u);
  EXPECT_FALSE(file_ids.count(*pipe_file_ids.begin())) << "file ids are unique across the file";
  EXPECT_EQ(shm_inodes.size(), 1u);
  ASSERT_EQ(pipe_data.size(), 1u) << "the pipe's bytes are stored once";
  EXPECT_EQ(pipe_data[0], "tree-pipe");
}

TEST_F(DumpTree, RefusalInAChildNamesItAndLeavesTheTreeRunning) {
  TempDir out;
  ASSERT_NO_FATAL_FAILURE(start_tree("netlink-in-child"));
  RunResult r = dump(p.root, out.file("tree.ckpt"));
  expect_one_line_failure(r, "pid " + std::to_string(p.child2) + ": fd 6 socket (only AF_UNIX, TCP and UDP sockets are restored)");
  EXPECT_EQ(dir_listing(out.path()), std::vector<std::string>{});
  expect_tree_as_it_was(p);
}

// -o - cannot seek: the streamed tree image has the file form's layout.
TEST_F(DumpTree, StreamedTreeEqualsTheFileForm) {
  ASSERT_NO_FATAL_FAILURE(start_tree());
  std::string file = tmp.file("file.ckpt"), streamed = tmp.file("streamed.ckpt");
  expect_success(dump(p.root, file));
  RunResult r = dump(p.root, "-");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(write_file(streamed, r.out));
  RunResult v = verify_intact(streamed);
  EXPECT_EQ(v.exit_code, 0) << v.err;
  // Not byte for byte the same size any more: the first dump's injected
  // syscalls write to each process's stack, ending the copy-on-write
  // sharing of those pages with its parent, so the second dump may store
  // a few pages that the first stored once (DECISIONS.md 157).
  Cores a = open_cores(file), b = open_cores(streamed);
  ASSERT_EQ(a.records.size(), 4u);
  ASSERT_EQ(a.records.size(), b.records.size());
  for (auto &[pid, rec] : a.records) {
    ASSERT_TRUE(b.records.count(pid)) << pid;
    EXPECT_EQ(rec.offset == 0, b.records[pid].offset == 0) << pid << ": a zombie in one form only";
    EXPECT_EQ(b.records[pid].offset % 4096, 0u) << pid;
  }
  expect_tree_as_it_was(p);
}

TEST_F(DumpTree, KillEndsTheWholeTree) {
  ASSERT_NO_FATAL_FAILURE(start_tree());
  expect_success(dump(p.root, tmp.file("tree.ckpt"), {"--kill"}));
  int status = 0;
  ASSERT_TRUE(tree->wait_exit(&status, 10));
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  for (pid_t pid : {p.child1, p.child2, p.grandchild}) {
    bool gone = test::wait_until(
        [&] {
          char s = proc_state(pid);
          return s != 'S' && s != 'R' && s != 'D' && s != 'T' && s != 't';
        },
        10);
    EXPECT_TRUE(gone) << "process " << pid << " still runs (state " << proc_state(pid) << ")";
  }
}

}  // namespace
}  // namespace ckpt::dumptest

namespace ckpt::dumptest {
namespace {

// libckpt runs imgtool as a child of the process it checkpoints: the dumper
// leaves itself (and what it runs) out of the tree (DECISIONS.md 73).
TEST_F(DumpTree, TheDumperLeavesItselfOut) {
  std::string image = tmp.file("self.ckpt");
  RunResult r = test::run({"/bin/sh", "-c", "echo $$; \"$0\" dump --pid $$ -o \"$1\"; echo rc=$?", imgtool(), image});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  std::vector<std::string> lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out << r.err;
  EXPECT_EQ(lines[1], "rc=0") << r.err;
  RunResult info = test::run({imgtool(), "info", "--json", image});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  json j = json::parse(info.out);
  ASSERT_EQ(j["tree"].size(), 1u) << j["tree"].dump();
  EXPECT_EQ(j["tree"][0]["pid"], std::stol(lines[0]));
  // A single process is the single-process image of before: no Tree note.
  auto r2 = ImageReader::open(image);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->find_ckpt(CkptNote::Tree), nullptr);
  auto v2 = decode_ckpt(*r2);
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->identity.process_count, 1u);
}

// A process of the tree stopped by job control stays stopped, as gcore
// leaves it; the others run on.
TEST_F(DumpTree, AStoppedChildStaysStopped) {
  ASSERT_NO_FATAL_FAILURE(start_tree());
  ASSERT_EQ(kill(p.child2, SIGSTOP), 0);
  ASSERT_TRUE(wait_for_state(p.child2, 'T'));
  std::string image = tmp.file("tree.ckpt");
  expect_success(dump(p.root, image));
  EXPECT_EQ(proc_state(p.child2), 'T');
  EXPECT_EQ(tracer_pid(p.child2), 0);
  for (pid_t pid : {p.root, p.child1, p.grandchild}) expect_running_untraced(pid);
  RunResult info = test::run({imgtool(), "info", "--json", image});
  json j = json::parse(info.out);
  for (const json &e : j["tree"])
    if (e["pid"] == p.child2) {
      EXPECT_EQ(e["state"], "stopped");
    }
  kill(p.child2, SIGCONT);
}

// Children that come and go while the tree is frozen: each dump still
// succeeds with a consistent tree (a child exiting meanwhile is a zombie
// record, or not there at all), and the churn goes on afterwards.
TEST_F(DumpTree, ChildrenComingAndGoingWhileFreezing) {
  ASSERT_NO_FATAL_FAILURE(start_tree("churn"));
  for (int i = 0; i < 5; i++) {
    std::string image = tmp.file("churn" + std::to_string(i) + ".ckpt");
    expect_success(dump(p.root, image));
    if (HasFatalFailure()) return;
    RunResult v = verify_intact(image);
    EXPECT_EQ(v.exit_code, 0) << v.err;
    Cores cores = open_cores(image);
    EXPECT_GE(cores.records.size(), 4u);
    for (auto &[pid, rec] : cores.records)
      if (rec.ppid == p.child2) {
        EXPECT_TRUE(rec.flags & kTreeZombie || cores.embedded.count(pid)) << pid;
      }
    for (pid_t pid : {p.root, p.child1, p.child2, p.grandchild}) expect_running_untraced(pid);
  }
}

}  // namespace
}  // namespace ckpt::dumptest
