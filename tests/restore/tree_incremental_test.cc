// Incremental chains of a process tree (issue #11, FORMAT.md §12.2):
// tests/programs/restore_tree_incremental.c is a tree of 3 processes
// sharing 16 MiB copy-on-write, each rewriting one page in ten between
// dumps; a child is forked between the first and second link, another
// exits between the second and third. A 4 MiB MAP_SHARED|MAP_ANONYMOUS
// region is shared by all, the root rewriting a tenth of it per step.
// Restored from the last link (or its merge), every process checks every
// word.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <map>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "file_size.h"
#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

using json = nlohmann::json;
constexpr unsigned long long kRegion = 16ull << 20;

// Non-zero exit and exactly one line on stderr, containing `needle`.
void expect_one_line(const RunResult &r, const std::string &needle) {
  EXPECT_TRUE(r.exited && r.exit_code != 0) << r.status();
  auto lines = split_lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0];
}

// Bytes of an image's memory by process and page source, from info --json.
struct MemoryBytes {
  unsigned long long stored = 0, parent = 0, once = 0;
};

class TreeIncremental : public RestoreTest {
 protected:
  std::string link(int n) const { return tmp_.file("link" + std::to_string(n) + ".core"); }
  RunResult imgtool_run(const std::vector<std::string> &args, int timeout = 120) {
    std::vector<std::string> argv = {imgtool()};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::run(argv, timeout);
  }

  // Tells the tree to write generation n; waits for the processes `who`
  // (0 root, 1..3 children) to have written it.
  void step(int n, const std::vector<int> &who) {
    ASSERT_TRUE(write_file(tmp_.file("step" + std::to_string(n)), ""));
    for (int k : who) {
      std::string done = tmp_.file("done" + std::to_string(n) + "_" + std::to_string(k));
      ASSERT_TRUE(wait_until([&] { return access(done.c_str(), F_OK) == 0; }, 60))
          << "process " << k << " never wrote generation " << n << "\n" << log();
    }
  }

  void dump_ok(const std::string &out, const std::vector<std::string> &extra) {
    RunResult d = dump(pid_, out, extra);
    ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  }

  // link0: the tree of root, child 1 and child 2, full. link1 on link0:
  // child 3 is new. link2 on link1 (--kill): child 2 is gone. With
  // `compare`, each live process's state is taken before the last dump.
  void make_chain(bool compare) {
    pass_file_ = log_path();
    ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_INCREMENTAL_PATH));
    pids_ = tree_pids();
    ASSERT_EQ(pids_.size(), 3u) << program_->value("pids");
    {
      // Every process of the first dump gets its tracker before the freeze,
      // which finds and resets it (DECISIONS 260).
      RunResult d = dump(pid_, link(0), {"--stats"});
      ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
      EXPECT_NE(d.err.find(", armed before the freeze 3 (kept 3) in "), std::string::npos) << d.err;
    }
    ASSERT_NO_FATAL_FAILURE(step(1, {0, 1, 2}));
    std::string child3 = read_file(tmp_.file("child3"));
    ASSERT_FALSE(child3.empty());
    pids_.push_back(std::stoi(child3));
    ASSERT_NO_FATAL_FAILURE(dump_ok(link(1), {"--parent", "link0.core"}));
    ASSERT_NO_FATAL_FAILURE(step(2, {0, 1, 3}));
    ASSERT_TRUE(wait_until([&] { return !pid_exists(pids_[2]); }, 20)) << "child 2 did not go";
    if (compare)
      for (pid_t p : live()) {
        before_[p] = test::capture_idle_state(p);
        ASSERT_EQ(before_[p].error, "") << "process " << p << " before the last dump";
      }
    ASSERT_NO_FATAL_FAILURE(dump_ok(link(2), {"--parent", "link1.core", "--kill"}));
    int status = 0;
    ASSERT_TRUE(program_->wait_exit(&status, 20)) << "still alive after dump --kill";
    // The children become ours (we are the subreaper) as the tree dies:
    // reaped, so that their pids are free for the restore.
    for (pid_t p : {pids_[1], pids_[3]})
      ASSERT_TRUE(wait_until([&] { return waitpid(p, nullptr, WNOHANG) == p || !pid_exists(p); }, 20))
          << "process " << p << " still there after dump --kill";
  }

  // The processes of the last link: root, child 1, child 3.
  std::vector<pid_t> live() const { return {pids_[0], pids_[1], pids_[3]}; }

  std::map<pid_t, MemoryBytes> memory_of(const std::string &image) {
    std::map<pid_t, MemoryBytes> out;
    RunResult info = imgtool_run({"info", "--json", image});
    EXPECT_TRUE(info.exited && info.exit_code == 0) << info.err;
    json j = json::parse(info.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << info.out;
    if (j.is_discarded()) return out;
    for (const json &m : j["memory"]) {
      MemoryBytes &b = out[m["pid"].get<pid_t>()];
      b.stored += m["stored_bytes"].get<unsigned long long>();
      b.parent += m["parent_bytes"].get<unsigned long long>();
      b.once += m.value("stored_once_bytes", 0ull);
    }
    return out;
  }

  // The next restore_expect() compares every live process with its state
  // before the last dump (make_chain(true)), as compare_tree_ does.
  void compare_next_restore() {
    before_state_ = before_.at(pid_);
    before_tree_.clear();
    for (const auto &[p, state] : before_)
      if (p != pid_) before_tree_[p] = state;
    compare_tree_ = true;
  }

  std::vector<pid_t> pids_;  // root, child 1, child 2, child 3
  std::map<pid_t, test::ProcessState> before_;
};

// Sizes (from info --json): a process new since the parent is stored
// whole, one gone is absent, every other stores about the tenth it
// rewrote. Restored from the last link every process has every word of
// every generation, and its state as before; lazily and in a new pid
// namespace too.
TEST_F(TreeIncremental, ChainOfThreeRestoresEveryProcess) {
  ASSERT_NO_FATAL_FAILURE(make_chain(true));
  auto full = memory_of(link(0));
  auto second = memory_of(link(1));
  auto last = memory_of(link(2));
  ASSERT_EQ(full.size(), 3u);
  ASSERT_EQ(second.size(), 4u);
  ASSERT_EQ(last.size(), 3u) << "child 2 exited before the last link";
  EXPECT_EQ(last.count(pids_[2]), 0u);
  // Child 3 is new in link 1: its own full core (no parent pages), its
  // pages stored there or, shared with the root's stored ones, once.
  EXPECT_EQ(second[pids_[3]].parent, 0u);
  EXPECT_GE(second[pids_[3]].stored + second[pids_[3]].once, kRegion);
  unsigned long long full_stored = 0, last_stored = 0;
  for (auto &[pid, b] : full) full_stored += b.stored;
  for (auto &[pid, b] : last) {
    last_stored += b.stored;
    // One page in ten of the region rewritten, the rest in the parent;
    // the root's also one in ten of the shared region (whole: 4 MiB more).
    EXPECT_GE(b.parent, kRegion * 85 / 100) << "process " << pid;
    EXPECT_LE(b.stored, kRegion * 25 / 100) << "process " << pid;
  }
  EXPECT_GE(full_stored, kRegion);
  EXPECT_LE(last_stored, full_stored * 40 / 100) << "the last link stores " << last_stored << " of " << full_stored;

  RunResult v = imgtool_run({"verify", link(2)});
  EXPECT_TRUE(v.exited && v.exit_code == 0) << v.status() << "\n" << v.out << v.err;
  EXPECT_NE(v.out.find("chain of 3 images"), std::string::npos) << v.out;

  // Detached, compared process by process, then let run to their checks.
  std::string pidfile = tmp_.file("restored.pid");
  RunResult r = restore(link(2), {"--detach", "--pidfile", pidfile});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  expect_processes_as_before(before_, live());
  ASSERT_NO_FATAL_FAILURE(go());
  int st = 0;
  ASSERT_TRUE(test::wait_child_exit(pid_, &st, 60)) << log();
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st << "\n" << log();
  EXPECT_NE(log().find("generation 2 checked in every process"), std::string::npos) << log();
  ASSERT_EQ(unlink(go_path().c_str()), 0);

  ASSERT_EQ(::link(link(2).c_str(), image_path().c_str()), 0);
  compare_next_restore();
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  // Not compared: a lazy restore of a chain maps the parent links' files
  // too, where the comparison's lazy allowance knows only image_path().
  compare_tree_ = false;
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--lazy"}));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0, {"--pidns"}));
}

// merge folds the tree chain into one tree image: it verifies, is no
// longer incremental, opens in gdb per process (--pid of a child), and
// restores with the chain gone. extract and gdb --pid of the chain itself
// follow each process's links too.
TEST_F(TreeIncremental, MergedTreeChainVerifiesRestoresAndOpensInGdb) {
  ASSERT_NO_FATAL_FAILURE(make_chain(true));
  std::string child1 = std::to_string(pids_[1]), child3 = std::to_string(pids_[3]);
  // Straight from the chain: a child's extracted core stands alone.
  std::string core = tmp_.file("child3.core");
  RunResult e = imgtool_run({"extract", link(2), "--pid", child3, "-o", core});
  ASSERT_TRUE(e.exited && e.exit_code == 0) << e.status() << "\n" << e.err;
  RunResult vi = imgtool_run({"verify", "--intact", core});
  EXPECT_TRUE(vi.exited && vi.exit_code == 0) << vi.out << vi.err;
  RunResult g0 = test::run({"gdb", "-batch", "-nx", "-ex", "print generation", RESTORE_TREE_INCREMENTAL_PATH, core}, 60);
  EXPECT_NE(g0.out.find("= 2"), std::string::npos) << g0.out << g0.err;
  RunResult g1 = imgtool_run({"gdb", link(2), "--pid", child1, "--", "-batch", "-nx", "-ex", "print generation"});
  EXPECT_NE(g1.out.find("= 2"), std::string::npos) << g1.out << g1.err;

  std::string merged = tmp_.file("merged.core");
  RunResult m = imgtool_run({"merge", link(2), "-o", merged});
  ASSERT_TRUE(m.exited && m.exit_code == 0) << m.status() << "\n" << m.err;
  for (int n = 0; n < 3; n++) ASSERT_EQ(unlink(link(n).c_str()), 0);
  RunResult v = imgtool_run({"verify", merged});
  EXPECT_TRUE(v.exited && v.exit_code == 0) << v.status() << "\n" << v.out << v.err;
  json j = json::parse(imgtool_run({"info", "--json", merged}).out, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_TRUE(j["parent"].is_null());
  EXPECT_EQ(j["identity"]["incremental"], false);
  unsigned long long parent = 0, once = 0;
  for (const json &mm : j["memory"]) {
    parent += mm["parent_bytes"].get<unsigned long long>();
    once += mm.value("stored_once_bytes", 0ull);
  }
  EXPECT_EQ(parent, 0u);
  // The pages child 1 still shares with the root since link 0 (Parent in
  // both cores, resolving to the one page the root's core in link 0
  // stores) are stored once in the merge too: most of the region.
  EXPECT_GE(once, kRegion / 2) << "copy-on-write sharing is lost in the merged tree";
  RunResult g = imgtool_run({"gdb", merged, "--pid", child3, "--", "-batch", "-nx", "-ex", "print generation"});
  EXPECT_NE(g.out.find("= 2"), std::string::npos) << g.out << g.err;
  ASSERT_EQ(rename(merged.c_str(), image_path().c_str()), 0);
  compare_next_restore();
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_NE(log().find("generation 2 checked in every process"), std::string::npos) << log();
}

// A damaged or missing middle link is one line naming it, for verify,
// restore and merge; nothing is restored.
TEST_F(TreeIncremental, DamagedMiddleLinkIsRefused) {
  ASSERT_NO_FATAL_FAILURE(make_chain(false));
  std::string moved = tmp_.file("moved.core");
  ASSERT_EQ(rename(link(1).c_str(), moved.c_str()), 0);
  expect_one_line(imgtool_run({"verify", link(2)}), link(1));
  expect_one_line_failure(restore(link(2)), link(1));
  ASSERT_EQ(rename(moved.c_str(), link(1).c_str()), 0);
  ASSERT_TRUE(test::flip_byte(link(1), test::file_size(link(1)) / 2));  // memory of some process
  expect_one_line(imgtool_run({"verify", link(2)}), "parent image " + link(1));
  expect_one_line_failure(restore(link(2)), link(1));
  expect_one_line(imgtool_run({"merge", link(2), "-o", tmp_.file("m.core")}), link(1));
  EXPECT_EQ(access(tmp_.file("m.core").c_str(), F_OK), -1);
}

}  // namespace
}  // namespace ckpt::restoretest
