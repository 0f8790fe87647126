// Real process trees checkpointed mid-run and finishing correctly after the
// restore: `make -j2` on a small Makefile, python3's multiprocessing.Pool in
// the middle of a map.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <unistd.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

class RestoreTreePrograms : public RestoreTest {
 protected:
  // Starts argv in the work directory with stdout to out.txt, waits for
  // `started`, dumps the tree with --kill, restores it in the foreground
  // (with `extra`) and expects exit 0.
  void run_to_completion(const std::vector<std::string> &argv, const std::function<bool()> &started,
                         const std::vector<std::string> &extra = {}) {
    Program::Options o;
    o.log = log_path();
    o.stdout_file = tmp_.file("out.txt");
    o.cwd = dir();
    ASSERT_NO_FATAL_FAILURE(start_argv(argv, o));
    ASSERT_TRUE(wait_until(started, 30)) << "it did not get going; stdout:\n"
                                         << read_file(o.stdout_file) << "\nstderr:\n" << log();
    ASSERT_NO_FATAL_FAILURE(dump_kill());
    RunResult r = restore(image_path(), extra, 90);
    ASSERT_FALSE(r.timed_out) << "the restored tree did not finish; stdout:\n" << read_file(o.stdout_file);
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err << "\nstdout:\n"
                                              << read_file(o.stdout_file) << "\nstderr:\n" << log();
    EXPECT_EQ(r.err, "");
  }
};

// A Makefile in `dir` whose all.txt is made of `parts` parts, 1.out ...,
// each a job of 0.2 s; returns what all.txt must hold.
std::string write_parts_makefile(const std::string &dir, int parts) {
  std::string list, want;
  for (int i = 1; i <= parts; i++) {
    list += (i > 1 ? " " : "") + std::to_string(i);
    want += "part " + std::to_string(i) + "\n";
  }
  std::ofstream(dir + "/Makefile") << "PARTS := $(addsuffix .out," << list << ")\n"
                                   << "all.txt: $(PARTS)\n"
                                      "\tcat $(PARTS) > $@\n"
                                      "%.out:\n"
                                      "\tsleep 0.2; echo part $* > $@\n";
  return want;
}

TEST_F(RestoreTreePrograms, MakeJ2Finishes) {
  ASSERT_EQ(access("/usr/bin/make", X_OK), 0) << "no /usr/bin/make (scripts/setup.sh installs it)";
  std::string want = write_parts_makefile(dir(), 8);
  // Checkpointed once the first parts are made, with jobs running.
  run_to_completion({"/usr/bin/make", "-j2"}, [&] { return access(tmp_.file("2.out").c_str(), F_OK) == 0; });
  EXPECT_EQ(read_file(tmp_.file("all.txt")), want);
}

// A python3 multiprocessing Pool of two mapping `work` over 0..99, each
// item returning `result` (an expression of x); it creates the file
// "started" at item 5 and prints the sum.
std::string pool_script(const std::string &result) {
  return "import multiprocessing, sys, time\n"
         "def work(x):\n"
         "    time.sleep(0.02)\n"
         "    if x == 5:\n"
         "        open('started', 'w').close()\n"
         "    return " + result + "\n"
         "if __name__ == '__main__':\n"
         "    with multiprocessing.Pool(2) as pool:\n"
         "        res = pool.map(work, range(100), chunksize=1)\n"
         "    print('sum', sum(res), flush=True)\n";
}

TEST_F(RestoreTreePrograms, PythonPoolMidMap) {
  ASSERT_EQ(access("/usr/bin/python3", X_OK), 0) << "no /usr/bin/python3 (scripts/setup.sh installs it)";
  run_to_completion({"/usr/bin/python3", "-c", pool_script("x * x")},
                    [&] { return access(tmp_.file("started").c_str(), F_OK) == 0; });
  EXPECT_EQ(read_file(tmp_.file("out.txt")), "sum 328350\n");
}

// python3's Pool again, each process's memory served lazily.
TEST_F(RestoreTreePrograms, PythonPoolMidMapLazy) {
  ASSERT_EQ(access("/usr/bin/python3", X_OK), 0) << "no /usr/bin/python3 (scripts/setup.sh installs it)";
  run_to_completion({"/usr/bin/python3", "-c", pool_script("x * 3")},
                    [&] { return access(tmp_.file("started").c_str(), F_OK) == 0; }, {"--lazy"});
  EXPECT_EQ(read_file(tmp_.file("out.txt")), "sum 14850\n");
}

// The same with --pidns, while nothing holds the pids: the namespace's
// init passes the root's status on.
TEST_F(RestoreTreePrograms, MakeJ2FinishesInANewPidNamespace) {
  ASSERT_EQ(access("/usr/bin/make", X_OK), 0) << "no /usr/bin/make (scripts/setup.sh installs it)";
  std::string want = write_parts_makefile(dir(), 6);
  run_to_completion({"/usr/bin/make", "-j2"}, [&] { return access(tmp_.file("1.out").c_str(), F_OK) == 0; },
                    {"--pidns"});
  EXPECT_EQ(read_file(tmp_.file("all.txt")), want);
}

}  // namespace
}  // namespace ckpt::restoretest
