// imgtool on real processes and real limits: `imgtool info` and `verify` of
// a gdb gcore of a running program, and running out of memory.
#include <set>

#include "imgtool_fixture.h"

using namespace ckpt::cli_test;
using namespace ckpt::test;

namespace {

// The sleeper program (spawned_process.h), its "pid" and "tids" lines read
// up to "ready"; killed and reaped when this object goes away, whatever
// happened in between.
class Sleeper : public SpawnedProcess {
 public:
  Sleeper() : SpawnedProcess({SLEEPER_PATH}, Options::without_input()) {}
  /// Its threads as it reported them ("tids T0 T1").
  std::set<int> reported_tids() const {
    std::set<int> out;
    int t0, t1;
    if (std::sscanf(value("tids").c_str(), "%d %d", &t0, &t1) == 2) out = {t0, t1};
    return out;
  }
};

std::set<int> tids_of(pid_t pid) {
  std::vector<pid_t> tids = task_tids(pid);
  return std::set<int>(tids.begin(), tids.end());
}

}  // namespace

TEST_F(Imgtool, RealGcore) {
  std::string gdb = find_tool({"gdb"});
  ASSERT_NE(gdb, "") << "gdb is required (scripts/setup.sh installs it)";
  pid_t pid;
  std::set<int> tids;
  std::string core = dir_->file("sleeper.core");
  {
    Sleeper s;
    ASSERT_TRUE(s.ready()) << s.error();
    ASSERT_EQ(s.value("pid"), std::to_string(s.pid()));
    ASSERT_EQ(s.reported_tids().size(), 2u) << "sleeper did not report its threads";
    pid = s.pid();
    tids = tids_of(pid);
    ASSERT_EQ(tids, s.reported_tids());
    RunResult g = run({gdb, "-batch", "-nx", "-p", std::to_string(pid), "-ex", "gcore " + core}, 120);
    ASSERT_TRUE(g.exited && g.exit_code == 0) << "gdb gcore: " << g.status() << "\n" << g.out << g.err;
    ASSERT_NE(g.out.find("Saved corefile"), std::string::npos) << g.out << g.err;
    // gcore detaches: the program is still there, with both threads.
    EXPECT_EQ(kill(pid, 0), 0);
    EXPECT_EQ(tids_of(pid), tids);
  }  // the sleeper is killed and reaped here
  EXPECT_NE(kill(pid, 0), 0) << "sleeper left behind";

  RunResult text = run({kImgtool, "info", core});
  ASSERT_TRUE(text.exited && text.exit_code == 0) << text.status() << ": " << text.err;
  EXPECT_NE(text.out.find("core file (not a ckpt image)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("process " + std::to_string(pid)), std::string::npos) << text.out;
  for (int t : tids) EXPECT_NE(text.out.find("thread " + std::to_string(t)), std::string::npos) << t;

  json j = info_json(core);
  EXPECT_EQ(j["kind"], "core");
  EXPECT_EQ(j["restorable"], false);
  ASSERT_EQ(j["processes"].size(), 1u);
  EXPECT_EQ(j["processes"][0]["pid"], pid);
  EXPECT_EQ(j["processes"][0]["comm"], "sleeper");
  std::set<int> seen;
  for (const json &t : j["processes"][0]["threads"]) seen.insert(t["tid"].get<int>());
  EXPECT_EQ(seen, tids);
  EXPECT_GT(j["memory"].size(), 5u);
  bool has_libc = false;
  for (const json &m : j["memory"])
    if (m["path"].get<std::string>().find("libc.so") != std::string::npos) has_libc = true;
  EXPECT_TRUE(has_libc) << "NT_FILE names should label the mappings";

  RunResult v = run({kImgtool, "verify", core});
  EXPECT_TRUE(v.exited) << v.status();
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_EQ(v.out, "");
  auto lines = v.err_lines();
  ASSERT_EQ(lines.size(), 1u) << v.err;
  EXPECT_EQ(lines[0].rfind("imgtool verify: ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("not a ckpt image"), std::string::npos) << lines[0];
}

// Running out of memory anywhere must end in one line, not in
// std::terminate's "terminate called after throwing std::bad_alloc" and an
// abort: `imgtool info --json` of an image with thousands of mappings under
// every address-space limit from "cannot even start" up to "enough".
TEST(ImgtoolLimits, OutOfMemoryIsOneLine) {
  std::string prlimit = find_tool({"prlimit"});
  ASSERT_NE(prlimit, "") << "prlimit (util-linux) is needed";
  TempDir dir;
  SyntheticOptions o;
  o.segments = 3000;
  std::string image = dir.file("many.ckpt");
  ASSERT_TRUE(write_file(image, encode_image(make_synthetic(o))));
  int out_of_memory = 0;
  bool succeeded = false;
  for (int mib = 16; mib <= 1024 && !succeeded; mib += 1) {
    SCOPED_TRACE("address space limit " + std::to_string(mib) + " MiB");
    RunResult r = run({prlimit, "--as=" + std::to_string(mib << 20), kImgtool, "info", "--json", image}, 60);
    ASSERT_TRUE(r.exited) << r.status() << "\n" << r.err;
    if (r.err.find("error while loading shared libraries") != std::string::npos) continue;  // ld.so, not us
    if (r.exit_code == 0) {
      succeeded = true;
      break;
    }
    std::vector<std::string> lines = r.err_lines();
    ASSERT_EQ(lines.size(), 1u) << r.err;
    EXPECT_EQ(lines[0].rfind("imgtool info: ", 0), 0u) << lines[0];
    if (lines[0].find("out of memory") != std::string::npos) out_of_memory++;
  }
  EXPECT_TRUE(succeeded);
  EXPECT_GT(out_of_memory, 0) << "no limit ran out of memory after the image was opened";
}
