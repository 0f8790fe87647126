// Yama's ptrace_scope=1 (Ubuntu's default): a process may trace only its
// descendants unless the tracee names it with PR_SET_PTRACER. The dump
// guard is a child of imgtool that traces imgtool (DECISIONS 180), so
// imgtool names it. Skipped where the kernel has no Yama; as root the test
// sets ptrace_scope to 1 for its run and puts the old value back on every
// path out (a destructor).
#include <gtest/gtest.h>

#include <unistd.h>

#include "faults_common.h"

namespace ckpt::faulttest {
namespace {

constexpr const char *kPtraceScope = "/proc/sys/kernel/yama/ptrace_scope";

class PtraceScopeForTheTest {
 public:
  explicit PtraceScopeForTheTest(const std::string &value) : old_(test::read_text_file(kPtraceScope)) {
    ok_ = !old_.empty() && test::write_text_file(kPtraceScope, value);
  }
  ~PtraceScopeForTheTest() {
    if (!old_.empty()) test::write_text_file(kPtraceScope, old_);
  }
  bool ok() const { return ok_; }

 private:
  std::string old_;
  bool ok_ = false;
};

// imgtool without CAP_SYS_PTRACE (root's bounding set without it) dumps a
// process that lets any process trace it (the sleeper: PR_SET_PTRACER_ANY);
// the guard, which needs imgtool's leave, must trace imgtool, or --stats
// says the dump went unguarded.
TEST(YamaPtraceScope, DumpGuardTracesImgtoolUnderScopeOne) {
  if (access(kPtraceScope, F_OK) != 0) GTEST_SKIP() << "this kernel has no Yama (" << kPtraceScope << " is absent)";
  if (geteuid() != 0) GTEST_SKIP() << "setting ptrace_scope needs root";
  std::string setpriv = test::find_tool({"setpriv"});
  ASSERT_NE(setpriv, "") << "setpriv (util-linux) is needed";
  PtraceScopeForTheTest scope("1");
  ASSERT_TRUE(scope.ok()) << "cannot set " << kPtraceScope;
  test::SpawnedProcess sleeper({DUMP_SLEEPER_PATH}, test::SpawnedProcess::Options::without_input());
  ASSERT_TRUE(sleeper.ready()) << sleeper.error();
  test::TempDir tmp;
  RunResult r = test::run({setpriv, "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace", imgtool(), "dump",
                           "--pid", std::to_string(sleeper.pid()), "-o", tmp.file("img.core"), "--track-dirty",
                           "--stats"},
                          120);
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_EQ(r.err.find("dump guard cannot trace imgtool"), std::string::npos) << r.err << r.out;
  EXPECT_EQ(r.out.find("dump guard cannot trace imgtool"), std::string::npos) << r.err << r.out;
  ASSERT_NO_FATAL_FAILURE(expect_untraced_and_running(sleeper.pid()));
}

}  // namespace
}  // namespace ckpt::faulttest
