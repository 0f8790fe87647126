// A tid the restore needs, taken after the preflight checked it and
// before the restorer's clone3 claims it (decision 254): held briefly, the
// restorer tries again and the restore succeeds; held past the retries, it
// fails in one line and leaves no process. The restore waits at the
// restore-before-threads fault point while the test takes the tid with a
// process of its own (PidHolder), so the hold does not depend on timing.
#include <gtest/gtest.h>

#include <atomic>
#include <dirent.h>
#include <thread>
#include <unistd.h>

#include "pid_holder.h"
#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class TidHeld : public RestoreTest {
 protected:
  TidHeld() { compare_state_ = true; }
  void TearDown() override {
    unsetenv("CKPT_FAULT");
    unsetenv("CKPT_FAULT_WAIT");
    RestoreTest::TearDown();
  }

  // A thread of the running program other than its leader.
  pid_t some_thread_tid() const {
    pid_t tid = -1;
    DIR *d = opendir(("/proc/" + std::to_string(pid_) + "/task").c_str());
    if (!d) return -1;
    while (dirent *e = readdir(d)) {
      pid_t t = atoi(e->d_name);
      if (t > 0 && t != pid_) tid = t;
    }
    closedir(d);
    return tid;
  }

  // The restore's next run waits at restore-before-threads; `at_hold` runs
  // on a watcher thread once the tid is taken and the restore let go, and
  // returns when the tid may be freed. release_path() is the go file of
  // the fault point.
  std::string release_path() const { return dir() + "/threads"; }
  void arm() {
    setenv("CKPT_FAULT", "restore-before-threads:wait", 1);
    setenv("CKPT_FAULT_WAIT", release_path().c_str(), 1);
  }
  // Waits (bounded) for the restore to reach the fault point, takes `tid`,
  // lets the restore go, calls until_free(), and frees the tid.
  std::thread watch(pid_t tid, std::atomic<int> *outcome, std::function<void()> until_free) {
    return std::thread([this, tid, outcome, until_free] {
      std::string here = release_path() + ".restore-before-threads";
      bool reached = false;
      for (int i = 0; i < 6000 && !(reached = access(here.c_str(), F_OK) == 0); i++) usleep(10000);
      // The tid is taken before the restore goes on, or the test says so
      // (outcome): a hold that failed must not pass as a retry that worked.
      std::unique_ptr<test::PidHolder> holder;
      if (reached) holder = std::make_unique<test::PidHolder>(tid);
      *outcome = !reached ? 1 : !holder->held() ? 2 : 0;
      if (FILE *f = std::fopen(release_path().c_str(), "we")) std::fclose(f);
      if (*outcome == 0) until_free();
    });
  }
};

// /proc/PID/syscall of the restorer's thread (the restored leader) shows
// nanosleep (35 on x86-64) while it waits between two clone3 attempts;
// glibc's nanosleep in the fault point's wait is clock_nanosleep (230).
bool restorer_is_retrying(pid_t pid) {
  std::string s = read_file("/proc/" + std::to_string(pid) + "/syscall");
  return s.rfind("35 ", 0) == 0;
}

TEST_F(TidHeld, ForAMomentTheRestorerTriesAgainAndTheProcessIsAsBefore) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_THREADS_PATH));
  pid_t tid = some_thread_tid();
  ASSERT_GT(tid, 0) << "restore_threads has no thread but its leader";
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::atomic<int> outcome{-1};
  std::atomic<bool> retried{false};
  arm();
  // Freed once the restorer has met the tid taken and waits to try again
  // (at most 10 s: a restore that failed at once is gone sooner).
  std::thread watcher = watch(tid, &outcome, [&] {
    for (int i = 0; i < 100000 && pid_exists(pid_) && !retried; i++) {
      retried = restorer_is_retrying(pid_);
      if (!retried) usleep(100);
    }
  });
  restore_expect(0);
  watcher.join();
  EXPECT_EQ(outcome, 0) << "1: restore never reached restore-before-threads; 2: tid " << tid << " could not be taken";
  EXPECT_TRUE(retried) << "the restorer was never seen waiting to try clone3 again for tid " << tid;
}

TEST_F(TidHeld, PastTheRetriesTheRestoreFailsInOneLineAndLeavesNoProcess) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_THREADS_PATH));
  pid_t tid = some_thread_tid();
  ASSERT_GT(tid, 0) << "restore_threads has no thread but its leader";
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(go());
  std::atomic<int> outcome{-1};
  std::atomic<bool> done{false};
  arm();
  // Held until the restore has ended.
  std::thread watcher = watch(tid, &outcome, [&] {
    while (!done) usleep(1000);
  });
  RunResult r = restore(image_path(), {}, 60);
  done = true;
  watcher.join();
  ASSERT_EQ(outcome, 0) << "1: restore never reached restore-before-threads; 2: tid " << tid << " could not be taken";
  expect_one_line_failure(r, "tid " + std::to_string(tid) + " is in use by another process");
  EXPECT_FALSE(pid_exists(pid_)) << "pid " << pid_ << " exists after a failed restore (state " << proc_state(pid_)
                                 << ")";
  EXPECT_FALSE(pid_exists(tid)) << "tid " << tid << " is still held after the test freed it";
}

}  // namespace
}  // namespace ckpt::restoretest
