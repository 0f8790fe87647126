// The imgtool command-line tests' fixture (imgtool_test.cc,
// imgtool_gcore_test.cc): synthetic images written once per suite, and the
// contract's one-line failure check.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <string>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include <ckpt/img/records.h>
#include <ckpt/img/table.h>

#include "spawned_process.h"
#include "subprocess.h"
#include "synthetic.h"

namespace ckpt::cli_test {

using namespace ckpt::test;
namespace img = ckpt::img;
using json = nlohmann::json;


inline const std::string kImgtool = IMGTOOL_PATH;

class Imgtool : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // A good image of four threads, one with a parent, and a plain core.
    SyntheticOptions four_threads, with_parent, plain;
    four_threads.threads = 4;
    with_parent.with_parent = true;
    plain.ckpt_marker = false;
    dir_ = new TempDir;
    good_ = new std::string(dir_->file("good.ckpt"));
    child_ = new std::string(dir_->file("child.ckpt"));
    plain_ = new std::string(dir_->file("plain.core"));
    ASSERT_TRUE(write_file(*good_, encode_image(make_synthetic(four_threads))));
    ASSERT_TRUE(write_file(*child_, encode_image(make_synthetic(with_parent))));
    ASSERT_TRUE(write_file(*plain_, encode_image(make_synthetic(plain), false)));
  }
  static void TearDownTestSuite() {
    delete good_;
    delete child_;
    delete plain_;
    delete dir_;
  }

  static json info_json(const std::string &path) {
    RunResult r = run({kImgtool, "info", "--json", path});
    EXPECT_TRUE(r.exited && r.exit_code == 0) << r.status() << ": " << r.err;
    EXPECT_EQ(r.err, "");
    json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON:\n" << r.out;
    return j;
  }

  // The contract's failure shape: non-zero exit (not a signal), nothing on
  // stdout, exactly one line on stderr, starting "imgtool ".
  static void expect_one_line_failure(const std::vector<std::string> &args, const std::string &want_in_line = "") {
    std::vector<std::string> argv = {kImgtool};
    argv.insert(argv.end(), args.begin(), args.end());
    RunResult r = run(argv);
    std::string cmd;
    for (auto &a : args) cmd += " " + a;
    ASSERT_TRUE(r.started);
    EXPECT_TRUE(r.exited) << "imgtool" << cmd << ": " << r.status();
    EXPECT_NE(r.exit_code, 0) << "imgtool" << cmd;
    EXPECT_EQ(r.out, "") << "imgtool" << cmd;
    auto lines = r.err_lines();
    ASSERT_EQ(lines.size(), 1u) << "imgtool" << cmd << " stderr:\n" << r.err;
    EXPECT_EQ(r.err.back(), '\n');
    EXPECT_EQ(lines[0].rfind("imgtool ", 0), 0u) << lines[0];
    if (!want_in_line.empty()) {
      EXPECT_NE(lines[0].find(want_in_line), std::string::npos) << lines[0];
    }
  }

  static inline TempDir *dir_ = nullptr;
  static inline std::string *good_ = nullptr, *child_ = nullptr, *plain_ = nullptr;
};

inline std::string hex(unsigned long long v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", v);
  return b;
}

}  // namespace ckpt::cli_test
