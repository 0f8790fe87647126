// What the gdb-script tests share (gdbscripts_test.cc,
// gdbscripts_errors_test.cc): the target program, helpers that read gdb's
// tables, and the fixture that dumps the target once per test.
#pragma once

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include "spawned_process.h"
#include "subprocess.h"

namespace ckpt::gdbscripts_test {

using namespace ckpt::test;
using json = nlohmann::json;

const std::string kImgtool = IMGTOOL_PATH;
const std::string kScript = CKPT_GDB_SCRIPT;
const std::string kTargetProgram = GDBSCRIPTS_TARGET_PATH;
const std::string kSynthetic = MAKE_SYNTHETIC_PATH;

// ---------------------------------------------------------------------------
// The target process (tests/support/spawned_process.h): stdin /dev/null,
// stderr ours, "KEY VALUE" lines read until "ready"; SIGKILLed and reaped
// when it goes away, always.

class Target : public SpawnedProcess {
 public:
  explicit Target(const std::vector<std::string> &argv)
      : SpawnedProcess(argv, Options::without_input()) {}
};

// ---------------------------------------------------------------------------
// Output helpers.

inline std::string trim(const std::string &s) {
  size_t a = s.find_first_not_of(' ');
  size_t b = s.find_last_not_of(' ');
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// The commands print tables whose columns are separated by two or more
// spaces; no cell contains two spaces in a row.
inline std::vector<std::string> cells(const std::string &line) {
  std::vector<std::string> out;
  std::string t = trim(line);
  static const std::regex sep(" {2,}");
  for (std::sregex_token_iterator it(t.begin(), t.end(), sep, -1), end; it != end; ++it) out.push_back(*it);
  return out;
}

// The rows of the table printed after the line `header_first_cell ...`.
inline std::vector<std::vector<std::string>> table_after(const std::string &text, const std::string &header_first_cell) {
  std::vector<std::vector<std::string>> rows;
  bool in = false;
  for (const std::string &line : split_lines(text)) {
    if (!in) {
      auto c = cells(line);
      if (!c.empty() && c[0] == header_first_cell) in = true;
      continue;
    }
    if (line.rfind("  ", 0) != 0) break;  // rows are indented; anything else ends the table
    rows.push_back(cells(line));
  }
  return rows;
}

// "Label:   value" lines of `info checkpoint`.
inline std::string labelled(const std::string &text, const std::string &label) {
  for (const std::string &line : split_lines(text))
    if (line.rfind(label, 0) == 0) return trim(line.substr(label.size()));
  return "<no line '" + label + "'>";
}

inline int count(const std::string &text, const std::string &what) { return count_occurrences(text, what); }

inline std::string gdb() { return find_tool({"gdb"}); }

// gdb -batch on a core with ckpt.py sourced and the given commands, with this
// build's imgtool. Returns stdout + stderr.
inline RunResult run_gdb(const std::string &core, const std::vector<std::string> &commands,
                  const std::string &program = kTargetProgram,
                  const std::string &imgtool = kImgtool) {
  std::vector<std::string> argv = {"env", "CKPT_IMGTOOL=" + imgtool, gdb(), "-batch", "-nx",
                                   "-ex", "source " + kScript};
  for (const std::string &c : commands) {
    argv.push_back("-ex");
    argv.push_back(c);
  }
  if (!program.empty()) argv.push_back(program);
  if (!core.empty()) {
    argv.push_back("-c");
    argv.push_back(core);
  }
  return run(argv, 120);
}

inline std::string both(const RunResult &r) { return r.out + "\n" + r.err; }

inline unsigned long long hex(const std::string &s) { return std::stoull(s, nullptr, 16); }

// ---------------------------------------------------------------------------
// The fixture: the target running, dumped once per test.

class GdbScripts : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(gdb(), "") << "gdb is required (scripts/setup.sh installs it)";
    ASSERT_FALSE(dir_.path().empty());
    data_ = dir_.file("data.txt");
    image_ = dir_.file("target.ckpt");
    target_ = std::make_unique<Target>(std::vector<std::string>{kTargetProgram, data_});
    ASSERT_TRUE(target_->ready()) << target_->error();
    RunResult d = run({kImgtool, "dump", "--pid", std::to_string(target_->pid()), "-o", image_}, 120);
    ASSERT_EQ(d.status(), "exit 0") << d.err;
    RunResult i = run({kImgtool, "info", "--json", image_});
    ASSERT_EQ(i.status(), "exit 0") << i.err;
    info_ = json::parse(i.out);
    ASSERT_EQ(info_["kind"], "ckpt");
    ASSERT_EQ(info_["processes"].size(), 1u);
  }

  const json &process() const { return info_["processes"][0]; }

  TempDir dir_;
  std::string data_, image_;
  std::unique_ptr<Target> target_;
  json info_;
};

// Every command's output, and no Python traceback anywhere.
inline void expect_clean(const RunResult &r) {
  EXPECT_EQ(count(both(r), "Traceback"), 0) << both(r);
  EXPECT_EQ(count(both(r), "Python Exception"), 0) << both(r);
  EXPECT_EQ(count(both(r), "Error occurred in Python"), 0) << both(r);
}

}  // namespace ckpt::gdbscripts_test
