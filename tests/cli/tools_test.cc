// The contract: readelf, eu-readelf, llvm-readelf and eu-stack open an image
// without warnings of damage. The tools are dependencies installed by
// scripts/setup.sh; a missing one is a test failure, not a skip.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>
#include <vector>

#include "subprocess.h"
#include "synthetic.h"

using namespace ckpt::test;

namespace {

class Tools : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    SyntheticOptions o;
    o.threads = 4;
    auto im = make_synthetic(o);
    im.notes.files = {{0x10000000, 0x10004000, 0, "/usr/bin/synthetic"},
                      {0x10010000, 0x10014000, 0x2000, "/usr/lib/x86_64-linux-gnu/libsynthetic.so"}};
    image_ = new std::string(dir_->file("image.ckpt"));
    ASSERT_TRUE(write_file(*image_, encode_image(im)));
    SyntheticOptions x;
    x.extra_segments = 65540;
    xnum_image_ = new std::string(dir_->file("xnum.ckpt"));
    ASSERT_TRUE(write_file(*xnum_image_, encode_image(make_synthetic(x))));
  }
  static void TearDownTestSuite() {
    delete image_;
    delete xnum_image_;
    delete dir_;
  }

  static std::string tool(const std::vector<std::string> &names) {
    std::string t = find_tool(names);
    EXPECT_NE(t, "") << "required tool not found in PATH: " << names[0] << " (scripts/setup.sh installs it)";
    return t;
  }

  // The first of `names` found in PATH, run with `args`: *r, and
  // expect_clean(*r, what). Call through ASSERT_NO_FATAL_FAILURE.
  static void run_clean(const std::vector<std::string> &names, const std::vector<std::string> &args,
                        const std::string &what, RunResult *r) {
    std::string t = tool(names);
    ASSERT_NE(t, "");
    std::vector<std::string> argv = {t};
    argv.insert(argv.end(), args.begin(), args.end());
    *r = run(argv);
    expect_clean(*r, what);
  }

  // Exit 0, and nothing that looks like a complaint anywhere in the output.
  static void expect_clean(const RunResult &r, const std::string &what) {
    ASSERT_TRUE(r.started) << what << ": " << r.err;
    EXPECT_TRUE(r.exited && r.exit_code == 0) << what << ": " << r.status() << "\n" << r.err;
    for (const std::string *s : {&r.out, &r.err}) {
      std::string l = lower(*s);
      for (const char *bad : {"warning", "error", "corrupt", "truncated", "invalid"})
        EXPECT_EQ(l.find(bad), std::string::npos)
            << what << " printed '" << bad << "':\n" << s->substr(0, 4000);
    }
    EXPECT_EQ(r.err, "") << what;
  }

  static size_t count(const std::string &hay, const std::string &needle) { return count_occurrences(hay, needle); }

  static TempDir *dir_;
  static std::string *image_, *xnum_image_;
};

TempDir *Tools::dir_ = nullptr;
std::string *Tools::image_ = nullptr;
std::string *Tools::xnum_image_ = nullptr;

}  // namespace

TEST_F(Tools, Readelf) {
  RunResult r;
  ASSERT_NO_FATAL_FAILURE(run_clean({"readelf"}, {"-lnW", *image_}, "readelf -lnW", &r));
  EXPECT_NE(r.out.find("CORE (Core file)"), std::string::npos) << r.out;
  EXPECT_EQ(count(r.out, "  LOAD "), 4u) << r.out;
  EXPECT_EQ(count(r.out, "NT_PRSTATUS"), 4u);
  EXPECT_EQ(count(r.out, "NT_PRPSINFO"), 1u);
  EXPECT_EQ(count(r.out, "NT_FPREGSET"), 4u);
  EXPECT_EQ(count(r.out, "NT_X86_XSTATE"), 4u);
  EXPECT_EQ(count(r.out, "NT_FILE"), 1u);
  // (Debian's readelf 2.40 prints "Cannot decode 64-bit note in 32-bit
  // build" for every NT_FILE, a gcore's included, so its paths are not
  // checked here; eu-readelf and libelf check NT_FILE.)
  // BFD must not mistake a CKPT note for a standard one: 12 CKPT notes
  // (11 non-empty tables + integrity), each shown as unknown.
  EXPECT_EQ(count(r.out, "  CKPT "), 11u + 1u) << r.out;
}

TEST_F(Tools, ReadelfPnXnum) {
  RunResult r;
  ASSERT_NO_FATAL_FAILURE(run_clean({"readelf"}, {"-hlnW", *xnum_image_}, "readelf -hlnW (PN_XNUM)", &r));
  EXPECT_NE(r.out.find("65535 (65546)"), std::string::npos) << r.out.substr(0, 2000);
  EXPECT_EQ(count(r.out, "  LOAD "), 65544u);
}

TEST_F(Tools, EuReadelf) {
  RunResult r;
  ASSERT_NO_FATAL_FAILURE(run_clean({"eu-readelf"}, {"-n", "-l", *image_}, "eu-readelf -n -l", &r));
  // elfutils accepts PRSTATUS/PRPSINFO only at their exact sizes and then
  // decodes them: the pids must be there.
  EXPECT_EQ(count(r.out, "PRSTATUS"), 4u);
  for (int tid = 4242; tid < 4246; tid++)
    EXPECT_NE(r.out.find("pid: " + std::to_string(tid) + ","), std::string::npos) << tid;
  EXPECT_NE(r.out.find("fname: synthetic"), std::string::npos);
  EXPECT_NE(r.out.find("/usr/lib/x86_64-linux-gnu/libsynthetic.so"), std::string::npos) << "NT_FILE entry";
  EXPECT_EQ(count(r.out, "  LOAD "), 4u);
}

TEST_F(Tools, EuReadelfPnXnum) {
  RunResult r;
  ASSERT_NO_FATAL_FAILURE(run_clean({"eu-readelf"}, {"-n", "-l", *xnum_image_}, "eu-readelf -n -l (PN_XNUM)", &r));
  EXPECT_EQ(count(r.out, "  LOAD "), 65544u);
  // eu-readelf -n looks for SHT_NOTE sections whenever the file has section
  // headers, and a PN_XNUM core has one (section 0, as the kernel writes
  // it), so it prints no notes here; kernel cores behave the same. eu-stack
  // (libdwfl) reads the notes from the program headers: see EuStackPnXnum.
}

TEST_F(Tools, LlvmReadelf) {
  RunResult r;
  ASSERT_NO_FATAL_FAILURE(run_clean({"llvm-readelf", "llvm-readelf-14"}, {"--notes", "-l", *image_}, "llvm-readelf --notes -l", &r));
  EXPECT_EQ(count(r.out, "NT_PRSTATUS"), 4u);
  EXPECT_EQ(count(r.out, "  LOAD "), 4u);
  // (No PN_XNUM run: LLVM 14 does not support it, see llvm_object_test.cc.)
}

namespace {

// eu-stack cannot unwind synthetic code (there is none), so it reports
// "No DWARF information found" per thread and exits 1. What it must do:
// find the process and every thread from the notes, with each thread's pc,
// and never complain about the core file itself.
void check_eu_stack(const std::string &image, int threads) {
  std::string t = find_tool({"eu-stack"});
  ASSERT_NE(t, "") << "eu-stack is required (scripts/setup.sh installs it)";
  RunResult r = run({t, "--core", image});
  ASSERT_TRUE(r.started) << r.err;
  ASSERT_TRUE(r.exited) << r.status();
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.status() << "\n" << r.err;
  EXPECT_NE(r.out.find("PID 4242 - core"), std::string::npos) << r.out;
  EXPECT_EQ(count_occurrences(r.out, "TID "), threads) << r.out;
  for (int t2 = 0; t2 < threads; t2++) {
    std::string tid = "TID " + std::to_string(4242 + t2) + ":";
    size_t at = r.out.find(tid);
    ASSERT_NE(at, std::string::npos) << tid << " missing:\n" << r.out;
    // Its frame #0 is the thread's rip.
    char pc[64];
    std::snprintf(pc, sizeof pc, "#0  0x%016llx", 0x10000100ull + t2);
    size_t frame = r.out.find(pc, at);
    EXPECT_NE(frame, std::string::npos) << tid << " lacks " << pc << "\n" << r.out;
    if (frame != std::string::npos) {
      size_t next = r.out.find("TID ", at + 1);
      EXPECT_TRUE(next == std::string::npos || frame < next) << "frame of " << tid << " printed under another thread";
    }
  }
  // Every stderr line is about the missing debug information of one
  // thread, nothing about the core being damaged or unreadable.
  std::regex allowed(R"(\S*eu-stack: dwfl_thread_getframes tid \d+ at 0x[0-9a-f]+ in .*: No DWARF information found)");
  for (const std::string &line : r.err_lines())
    EXPECT_TRUE(std::regex_match(line, allowed)) << "unexpected eu-stack complaint: " << line;
  EXPECT_EQ(r.err_lines().size(), size_t(threads)) << r.err;
}

}  // namespace

TEST_F(Tools, EuStack) { check_eu_stack(*image_, 4); }

TEST_F(Tools, EuStackPnXnum) { check_eu_stack(*xnum_image_, 3); }
