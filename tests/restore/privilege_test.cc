// Privilege state across a restore by root: capability sets, securebits,
// no_new_privs and seccomp filters come back per thread, never more than
// the original had; what imgtool inherited from its caller (ignored
// signals, a blocked mask) does not leak into the restored process; what
// cannot be restored is refused before anything starts.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <nlohmann/json.hpp>
#include <pthread.h>

#include <unistd.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class RestorePrivilege : public RestoreTest {
 protected:
  // A process whose seccomp filters no restore could install again: dump
  // --kill refuses it (one line naming the reason) and leaves it running;
  // an image written anyway for gdb is refused by restore for the same
  // reason.
  void expect_refused_at_dump_and_restore(const std::string &why) {
    RunResult d = dump(pid_, image_path(), {"--kill", "--inject-strict-seccomp"});
    EXPECT_TRUE(d.exited && d.exit_code != 0) << d.status();
    EXPECT_EQ(std::count(d.err.begin(), d.err.end(), '\n'), 1) << d.err;
    EXPECT_EQ(d.err.rfind("imgtool dump: ", 0), 0u) << d.err;
    EXPECT_NE(d.err.find(why), std::string::npos) << d.err;
    EXPECT_TRUE(pid_exists(pid_) && proc_state(pid_) != 'Z') << "dump --kill killed a process it refused";
    EXPECT_NE(access(image_path().c_str(), F_OK), 0) << "a refused dump wrote " << image_path();
    RunResult debug = dump(pid_, image_path(), {"--allow-unrestorable", "--inject-strict-seccomp"});
    ASSERT_TRUE(debug.exited && debug.exit_code == 0) << debug.err;
    kill(pid_, SIGKILL);
    int st = 0;
    ASSERT_TRUE(program_->wait_exit(&st, 10));
    ASSERT_NO_FATAL_FAILURE(go());
    RunResult r = restore(image_path());
    ASSERT_NO_FATAL_FAILURE(expect_one_line_failure(r, why));
    EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " exists after a refused restore";
  }

 protected:
  void SetUp() override {
    RestoreTest::SetUp();
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
  }
};

TEST_F(RestorePrivilege, CapabilitiesNoNewPrivsAndSeccompFiltersPerThread) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_PRIVILEGE_PATH));
  // Its third thread is in seccomp strict mode (DECISIONS 179).
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--inject-strict-seccomp"}));

  // info shows them, per thread, in text and JSON.
  RunResult info = test::run({imgtool(), "info", "--json", image_path()});
  ASSERT_TRUE(info.exited && info.exit_code == 0) << info.err;
  nlohmann::json j = nlohmann::json::parse(info.out);
  const nlohmann::json &threads = j["processes"][0]["threads"];
  ASSERT_EQ(threads.size(), 3u) << info.out;
  int strict = 0, filtered = 0;
  for (const nlohmann::json &t : threads) {
    const nlohmann::json &p = t["privileges"];
    uint64_t eff = std::stoull(p["cap_effective"].get<std::string>(), nullptr, 16);
    if (p["seccomp"] == "strict") {
      // Created before the others dropped anything.
      strict++;
      EXPECT_EQ(p["seccomp_filters"], 0) << t;
      EXPECT_EQ(p["no_new_privs"], false) << t;
      EXPECT_NE(eff & (1ull << 21), 0u) << "CAP_SYS_ADMIN not effective: " << t;
      continue;
    }
    filtered++;
    EXPECT_EQ(p["seccomp"], "filter") << t;
    EXPECT_EQ(p["seccomp_filters"], t["tid"] == pid_ ? 2 : 3) << t;
    EXPECT_EQ(p["no_new_privs"], true) << t;
    EXPECT_EQ(p["securebits"], "0x11") << t;
    EXPECT_EQ(eff & (1ull << 21), 0u) << "CAP_SYS_ADMIN still effective: " << t;
    EXPECT_EQ(p["cap_ambient"], "0x400") << t;  // CAP_NET_BIND_SERVICE
  }
  EXPECT_EQ(strict, 1);
  EXPECT_EQ(filtered, 2);
  EXPECT_FALSE(j["processes"][0]["capabilities"]["bounding"].is_null());
  RunResult text = test::run({imgtool(), "info", image_path()});
  EXPECT_NE(text.out.find("seccomp filter (2 filters)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("no_new_privs 1"), std::string::npos) << text.out;

  // The program compares its status lines and tries its filters.
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// Runs `f` with SIGTERM and SIGHUP ignored and SIGTERM, SIGHUP and SIGUSR2
// blocked in this thread: what a `trap '' TERM HUP` shell, or a caller's
// blocked mask, hands to imgtool through fork and exec (posix_spawn keeps
// both).
template <typename F>
void with_caller_signals(F f) {
  struct sigaction ign {}, old_term {}, old_hup {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGTERM, &ign, &old_term);
  sigaction(SIGHUP, &ign, &old_hup);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGHUP);
  sigaddset(&block, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  f();
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
}

TEST_F(RestorePrivilege, CallersIgnoredSignalsAndMaskDoNotLeak) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_PRIVILEGE_PATH, {"plain"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  // The program compares SigIgn, SigCgt and SigBlk of each thread.
  with_caller_signals([&] { ASSERT_NO_FATAL_FAILURE(restore_expect(0)); });
}

TEST_F(RestorePrivilege, RefusedWhenTheRestoreLacksACapabilityTheImageHolds) {
  std::string setpriv = test::find_tool({"setpriv"});
  ASSERT_FALSE(setpriv.empty()) << "no setpriv (scripts/setup.sh installs util-linux)";
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_PRIVILEGE_PATH, {"plain"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  // imgtool without CAP_NET_RAW (bounding set, hence permitted set too).
  RunResult r = test::run({setpriv, "--bounding-set", "-net_raw", imgtool(), "restore", image_path()});
  ASSERT_NO_FATAL_FAILURE(expect_one_line_failure(r, "cap_net_raw"));
  EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " exists after a refused restore";
}

TEST_F(RestorePrivilege, RefusedForAUserNotificationFilter) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_PRIVILEGE_PATH, {"notif"}));
  ASSERT_NO_FATAL_FAILURE(expect_refused_at_dump_and_restore("SECCOMP_RET_USER_NOTIF"));
}

// The restorer's last call in each thread, rt_sigreturn, runs under the
// thread's filters: a chain that refuses it cannot be restored.
TEST_F(RestorePrivilege, RefusedForFiltersThatRefuseRtSigreturn) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_PRIVILEGE_PATH, {"no-sigreturn"}));
  ASSERT_NO_FATAL_FAILURE(expect_refused_at_dump_and_restore("refuse rt_sigreturn"));
}

// The restorer fails after every thread exists (the leader cannot queue the
// process-wide signal again: RLIMIT_SIGPENDING is 0): imgtool says where,
// and no thread ran a single instruction of the program before that.
TEST_F(RestorePrivilege, LateRestorerFailureIsReportedBeforeAnyThreadRuns) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_PRIVILEGE_PATH, {"late-failure"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  // The spinning thread's counter, in the page cache of a file it maps.
  std::string counter = read_file(dir() + "/counter");
  ASSERT_EQ(counter.size(), 4096u);
  RunResult r = restore(image_path());
  ASSERT_NO_FATAL_FAILURE(expect_one_line_failure(r, "queueing pending signals"));
  EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " exists after a failed restore";
  EXPECT_TRUE(read_file(dir() + "/counter") == counter) << "a thread ran before the restore failed";
  EXPECT_EQ(log().find("FAIL"), std::string::npos) << log();
}

}  // namespace
}  // namespace ckpt::restoretest
