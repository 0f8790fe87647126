// imgtool's commands and the count of words they take (imgtool/cli.cc
// run_command): the one line of the contract says what was expected.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "subprocess.h"

using namespace ckpt::test;

namespace {

const std::string kImgtool = IMGTOOL_PATH;

// A command given the wrong count of words says, in its one line, what it
// expected (cli.cc run_command; the same lines before it existed).
TEST(ImgtoolWords, WrongWordCountSaysWhatWasExpected) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"info"}, "imgtool info: expected exactly one FILE (see 'imgtool info --help')"},
      {{"verify", "a.ckpt", "a.ckpt"}, "imgtool verify: expected exactly one FILE (see 'imgtool verify --help')"},
      {{"convert", "--to", "exec"}, "imgtool convert: expected exactly one FILE (see 'imgtool convert --help')"},
      {{"extract", "--pid", "1", "-o", "x"}, "imgtool extract: expected exactly one FILE (see 'imgtool extract --help')"},
      {{"merge", "-o", "x"}, "imgtool merge: expected exactly one CHILD (see 'imgtool merge --help')"},
      {{"diff", "a.ckpt"}, "imgtool diff: expected two images A B (see 'imgtool diff --help')"},
      {{"binfmt"}, "imgtool binfmt: expected install, uninstall or status (see 'imgtool binfmt --help')"},
      {{"gdb"}, "imgtool gdb: expected FILE and at most one PROGRAM (see 'imgtool gdb --help')"},
      {{"dump", "stray"}, "imgtool dump: unexpected argument 'stray'"},
  };
  for (const auto &[args, line] : cases) {
    std::vector<std::string> argv = {kImgtool};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = run(argv);
    EXPECT_TRUE(r.exited && r.exit_code == 1) << line << ": " << r.status();
    EXPECT_EQ(r.err, line + "\n");
    EXPECT_EQ(r.out, "");
  }
}

}  // namespace
