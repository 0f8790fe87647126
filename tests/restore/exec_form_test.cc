// The self-restoring exec form (FORMAT.md §12.3): `dump --exec` images run
// as ./FILE with an empty environment from another directory and restore
// like `imgtool restore`; `convert` switches forms by rewriting headers
// only; info, verify and restore read both forms; damaged exec headers are
// refused with one line.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

constexpr off_t kHead = 128;  // exec header + saved core header (§12.3)

std::string read_bytes(const std::string &path) { return read_file(path); }

Elf64_Ehdr header_at(const std::string &bytes, size_t at) {
  Elf64_Ehdr h{};
  if (bytes.size() >= at + sizeof h) std::memcpy(&h, bytes.data() + at, sizeof h);
  return h;
}

// The core image's size: where its last program header (the integrity
// note) ends, read from the core header (at 0 in the core form).
uint64_t core_size(const std::string &core_form) {
  Elf64_Ehdr h = header_at(core_form, 0);
  Elf64_Phdr last{};
  std::memcpy(&last, core_form.data() + h.e_phoff + (h.e_phnum - 1) * sizeof last, sizeof last);
  return last.p_offset + last.p_filesz;
}

// The physical extents of the file's first `len` bytes (FIEMAP): equal
// before and after a conversion means no data block was moved or copied.
std::vector<std::pair<uint64_t, uint64_t>> extents(const std::string &path, uint64_t len) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  fsync(fd);
  constexpr unsigned kMax = 4096;
  std::vector<char> buf(sizeof(fiemap) + kMax * sizeof(fiemap_extent));
  auto *fm = reinterpret_cast<fiemap *>(buf.data());
  fm->fm_start = 0;
  fm->fm_length = len;
  fm->fm_flags = FIEMAP_FLAG_SYNC;
  fm->fm_extent_count = kMax;
  if (ioctl(fd, FS_IOC_FIEMAP, fm) == 0)
    for (unsigned i = 0; i < fm->fm_mapped_extents; i++)
      out.push_back({fm->fm_extents[i].fe_logical, fm->fm_extents[i].fe_physical});
  close(fd);
  return out;
}

// The "  --option  description" blocks of a --help text: a line starting
// "  --" and the deeper-indented lines that continue it.
std::vector<std::string> option_blocks(const std::string &help) {
  std::vector<std::string> blocks;
  bool in_block = false;
  for (const std::string &line : split_lines(help)) {
    if (line.rfind("  --", 0) == 0) {
      blocks.push_back(line + "\n");
      in_block = true;
    } else if (in_block && line.rfind("   ", 0) == 0) {
      blocks.back() += line + "\n";
    } else {
      in_block = false;
    }
  }
  return blocks;
}

class ExecForm : public ReportingRestoreTest {
 protected:
  void SetUp() override {
    ReportingRestoreTest::SetUp();
    elsewhere_ = tmp_.file("elsewhere");
    ASSERT_EQ(mkdir(elsewhere_.c_str(), 0755), 0);
  }
  int passes() const { return test::count_occurrences(read_file(pass_file_), "PASS\n"); }
  RunResult imgtool_run(const std::vector<std::string> &args) { return RestoreTest::imgtool_run(args, 120); }
  // Runs `./NAME extra...` with an empty environment in elsewhere_, after
  // moving `image` there as NAME.
  RunResult run_exec(const std::string &image, const std::vector<std::string> &extra = {},
                     const std::string &name = "ckpt.elf") {
    std::string moved = elsewhere_ + "/" + name;
    if (image != moved) {
      EXPECT_EQ(rename(image.c_str(), moved.c_str()), 0) << strerror(errno);
    }
    std::vector<std::string> argv = {"/usr/bin/env", "-C", elsewhere_, "-i", "./" + name};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return test::run(argv, 90);
  }
  // go, run the exec image, expect exit `code` and one more PASS.
  void run_exec_expect(const std::string &image, int code, const std::vector<std::string> &extra = {}) {
    ASSERT_NO_FATAL_FAILURE(go());
    int before = passes();
    RunResult r = run_exec(image, extra);
    ASSERT_FALSE(r.timed_out) << "./ckpt.elf hung; program stderr:\n" << log();
    EXPECT_TRUE(r.exited && r.exit_code == code)
        << "./ckpt.elf: " << r.status() << " (expected exit " << code << ")\nstderr:\n" << r.err
        << "\nprogram stderr:\n" << log();
    EXPECT_EQ(passes(), before + 1) << read_file(pass_file_);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "");
    EXPECT_FALSE(pid_exists(pid_));
  }
  void expect_ok(const RunResult &r, const std::string &what) {
    EXPECT_TRUE(r.exited && r.exit_code == 0) << what << ": " << r.status() << "\n" << r.out << r.err;
  }
  void expect_one_line(const RunResult &r, const std::string &prefix, const std::string &needle) {
    EXPECT_TRUE(r.exited && r.exit_code != 0) << r.status();
    ASSERT_EQ(r.err_lines().size(), 1u) << r.err;
    EXPECT_EQ(r.err.rfind(prefix, 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << "expected \"" << needle << "\" in: " << r.err;
  }
  std::string moved() const { return elsewhere_ + "/ckpt.elf"; }
  std::string elsewhere_;
};

TEST_F(ExecForm, RunsAsDotSlashWithEmptyEnvironmentFromAnotherDirectory) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:42"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--exec"}));
  struct stat st;
  ASSERT_EQ(stat(image_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::string bytes = read_bytes(image_path());
  EXPECT_EQ(header_at(bytes, 0).e_type, ET_DYN);
  EXPECT_EQ(header_at(bytes, 64).e_type, ET_CORE);
  ASSERT_NO_FATAL_FAILURE(run_exec_expect(image_path(), 42));
}

// Run as ./ckpt.elf, the restored process equals the dumped one in its
// whole /proc state (restore_compare_expect, with the exec form).
TEST_F(ExecForm, WholeStateAsDotSlash) {
  compare_state_ = true;
  pass_file_ = log_path();
  restore_command_ = [&](const std::vector<std::string> &args) { return run_exec(image_path(), args); };
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_THREADS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--exec"}));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(ExecForm, DeathBySignalAs128PlusN) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"signal:" + std::to_string(SIGTERM)}));
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--exec"}));
  ASSERT_NO_FATAL_FAILURE(run_exec_expect(image_path(), 128 + SIGTERM));
}

TEST_F(ExecForm, DetachWithPidfileAndHelp) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"run"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--exec"}));
  RunResult help = run_exec(image_path(), {"--help"});
  EXPECT_TRUE(help.exited && help.exit_code == 0) << help.status() << help.err;
  EXPECT_NE(help.out.find("usage: ./ckpt.elf"), std::string::npos) << help.out;
  // Every option the image takes reads as in `imgtool restore --help`
  // (imgtool/restore_help.h; they had drifted apart on --pidns).
  RunResult tool_help = test::run({imgtool(), "restore", "--help"});
  std::vector<std::string> options = option_blocks(help.out);
  EXPECT_EQ(options.size(), 5u) << help.out;
  for (const std::string &option : options)
    EXPECT_NE(tool_help.out.find(option), std::string::npos)
        << "described differently by imgtool restore --help:\n" << option << "imgtool restore --help:\n" << tool_help.out;
  RunResult bad = run_exec(moved(), {"--bogus"});
  expect_one_line(bad, "./ckpt.elf: ", "--bogus");
  // A wrong command line exits as imgtool's does (DECISIONS 280).
  RunResult tool_bad = test::run({imgtool(), "restore", image_path(), "--bogus"});
  EXPECT_EQ(tool_bad.exit_code, 2) << tool_bad.err;
  EXPECT_EQ(bad.exit_code, tool_bad.exit_code);
  ASSERT_NO_FATAL_FAILURE(go());
  std::string pidfile = tmp_.file("restored.pid");
  RunResult r = run_exec(moved(), {"--detach", "--pidfile", pidfile});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err;
  EXPECT_EQ(read_file(pidfile), std::to_string(pid_) + "\n");
  ASSERT_TRUE(pid_exists(pid_));
  ASSERT_TRUE(wait_until([&] { return read_file(pass_file_).find("tick") != std::string::npos; }, 20))
      << read_file(pass_file_);
  ASSERT_EQ(kill(pid_, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid_, &status, 0), pid_);
}

// dump --exec streams like any dump (-o -): the writer never seeks.
TEST_F(ExecForm, StreamedToStandardOutput) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:5"}));
  RunResult d = dump(pid_, "-", {"--exec", "--kill"});
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.status() << "\n" << d.err;
  int status = 0;
  ASSERT_TRUE(program_->wait_exit(&status, 10));
  ASSERT_TRUE(write_file(image_path(), d.out));
  ASSERT_EQ(chmod(image_path().c_str(), 0700), 0);
  expect_ok(imgtool_run({"verify", image_path()}), "verify of the streamed exec form");
  ASSERT_NO_FATAL_FAILURE(run_exec_expect(image_path(), 5));
}

// --lazy maps the memory straight from the executable file.
TEST_F(ExecForm, LazyBigMemoryFromTheExecutable) {
  pass_file_ = log_path();  // restore_bigmem reports on its stderr
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_BIGMEM_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--exec"}));
  ASSERT_NO_FATAL_FAILURE(run_exec_expect(image_path(), 0, {"--lazy"}));
  ASSERT_NO_FATAL_FAILURE(run_exec_expect(moved(), 0));
  expect_ok(imgtool_run({"verify", moved()}), "verify");
}

// Convert in place both ways: the core form comes back byte for byte, the
// core bytes never move, and every command reads both forms.
TEST_F(ExecForm, ConvertInPlaceRoundTripsAndEveryCommandReadsBothForms) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:7"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::string core = read_bytes(image_path());
  uint64_t size = core_size(core);
  ASSERT_EQ(size, core.size());
  EXPECT_EQ(header_at(core, 0).e_phoff, 128u);
  EXPECT_EQ(core.substr(64, 64), std::string(64, '\0'));

  expect_ok(imgtool_run({"convert", image_path(), "--to", "exec"}), "convert --to exec");
  std::string exec = read_bytes(image_path());
  EXPECT_EQ(header_at(exec, 0).e_type, ET_DYN);
  EXPECT_EQ(exec.substr(64, 64), core.substr(0, 64));
  EXPECT_EQ(exec.substr(kHead, size - kHead), core.substr(kHead)) << "the core bytes moved or changed";
  EXPECT_GT(exec.size(), (size + 4095) / 4096 * 4096) << "no launcher after the page-aligned core image";
  expect_ok(imgtool_run({"verify", image_path()}), "verify of the exec form");
  RunResult info = imgtool_run({"info", image_path()});
  expect_ok(info, "info of the exec form");
  EXPECT_NE(info.out.find("exec form"), std::string::npos) << info.out;
  expect_ok(imgtool_run({"info", "--json", image_path()}), "info --json of the exec form");
  // Already exec: nothing to do.
  expect_ok(imgtool_run({"convert", image_path(), "--to", "exec"}), "convert --to exec twice");
  EXPECT_EQ(read_bytes(image_path()), exec);
  ASSERT_NO_FATAL_FAILURE(go());
  ASSERT_NO_FATAL_FAILURE(restore_expect(7));

  expect_ok(imgtool_run({"convert", image_path(), "--to", "core"}), "convert --to core");
  EXPECT_TRUE(read_bytes(image_path()) == core) << "convert --to core did not give back the original bytes";
  struct stat st;
  ASSERT_EQ(stat(image_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0111, 0u);
  ASSERT_NO_FATAL_FAILURE(restore_expect(7));
}

TEST_F(ExecForm, ConvertWithOutputLeavesTheSourceAlone) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:3"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--exec"}));
  std::string exec = read_bytes(image_path());
  std::string core_file = tmp_.file("out.core"), exec_file = tmp_.file("again.elf");
  expect_ok(imgtool_run({"convert", image_path(), "--to", "core", "-o", core_file}), "convert -o");
  EXPECT_EQ(read_bytes(image_path()), exec);
  std::string core = read_bytes(core_file);
  EXPECT_EQ(header_at(core, 0).e_type, ET_CORE);
  EXPECT_EQ(core.size(), core_size(core));
  expect_ok(imgtool_run({"verify", core_file}), "verify of the converted core");
  expect_ok(imgtool_run({"convert", core_file, "--to", "exec", "-o", exec_file}), "convert -o back");
  EXPECT_TRUE(read_bytes(exec_file) == exec) << "core -> exec did not give the bytes dump --exec wrote";
  RunResult ls = test::run({"/bin/ls", tmp_.path()}, 10);
  EXPECT_EQ(ls.out.find(".convert-"), std::string::npos) << "a temporary file was left: " << ls.out;
  ASSERT_NO_FATAL_FAILURE(run_exec_expect(exec_file, 3));
}

// convert -o onto another filesystem (the build's tmp dir to the tmpfs of
// /dev/shm and back): copy_file_range's EXDEV there (Linux 5.19+) falls
// back to reads and writes (DECISIONS 275); the bytes are those of an
// in-place conversion.
TEST_F(ExecForm, ConvertOntoAnotherFilesystem) {
  struct stat here, shm;
  ASSERT_EQ(stat(tmp_.path().c_str(), &here), 0);
  if (stat("/dev/shm", &shm) != 0 || shm.st_dev == here.st_dev)
    GTEST_SKIP() << "/dev/shm is missing or on the same filesystem as " << tmp_.path();
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:3"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::string core = read_bytes(image_path());
  std::string shm_file = "/dev/shm/ckpt-convert-test-" + std::to_string(getpid()) + ".elf";
  unlink(shm_file.c_str());
  RunResult to_shm = imgtool_run({"convert", image_path(), "--to", "exec", "-o", shm_file});
  std::string exec = read_bytes(shm_file);
  std::string back_file = tmp_.file("back.core");
  RunResult back = imgtool_run({"convert", shm_file, "--to", "core", "-o", back_file});
  unlink(shm_file.c_str());
  expect_ok(to_shm, "convert -o /dev/shm/...");
  expect_ok(back, "convert -o from /dev/shm back");
  expect_ok(imgtool_run({"convert", image_path(), "--to", "exec"}), "convert in place");
  EXPECT_TRUE(exec == read_bytes(image_path())) << "the copy on tmpfs differs from the in-place conversion";
  EXPECT_TRUE(read_bytes(back_file) == core) << "core -> exec -> core across filesystems changed the image";
}

// convert -o refuses a symbolic link, dangling or not, as dump, merge and
// extract do (DECISIONS 276): nothing is written through it or over it.
TEST_F(ExecForm, ConvertRefusesToReplaceASymbolicLink) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:3"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::string target = tmp_.file("target"), dangling = tmp_.file("dangling.elf"), live = tmp_.file("live.elf");
  ASSERT_TRUE(write_file(target, "keep\n"));
  ASSERT_EQ(symlink(tmp_.file("nowhere").c_str(), dangling.c_str()), 0);
  ASSERT_EQ(symlink(target.c_str(), live.c_str()), 0);
  for (const std::string &out : {dangling, live}) {
    RunResult r = imgtool_run({"convert", image_path(), "--to", "exec", "-o", out});
    expect_one_line(r, "imgtool convert: ", "is a symbolic link");
    struct stat st;
    ASSERT_EQ(lstat(out.c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode)) << out << " was replaced";
  }
  EXPECT_EQ(read_file(target), "keep\n");
  EXPECT_NE(access(tmp_.file("nowhere").c_str(), F_OK), 0) << "written through the dangling link";
}

// A 64 MiB image: converting moves no data block (FIEMAP extents and the
// bytes after the head are unchanged) and adds only the launcher's blocks.
TEST_F(ExecForm, ConvertOfALargeImageRewritesHeadersOnly) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_BIGMEM_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  std::string core = read_bytes(image_path());
  ASSERT_GT(core.size(), 64u << 20);
  auto before = extents(image_path(), core.size());
  ASSERT_FALSE(before.empty());
  struct stat st0, st1;
  ASSERT_EQ(stat(image_path().c_str(), &st0), 0);
  expect_ok(imgtool_run({"convert", image_path(), "--to", "exec"}), "convert --to exec");
  ASSERT_EQ(stat(image_path().c_str(), &st1), 0);
  EXPECT_EQ(extents(image_path(), core.size()), before) << "data blocks of the core image were moved";
  uint64_t launcher = st1.st_size - ((core.size() + 4095) / 4096 * 4096);
  EXPECT_LE(uint64_t(st1.st_blocks - st0.st_blocks) * 512, launcher + 8192) << "more than the launcher was written";
  std::string exec = read_bytes(image_path());
  EXPECT_TRUE(exec.compare(kHead, core.size() - kHead, core, kHead, std::string::npos) == 0);
  expect_ok(imgtool_run({"convert", image_path(), "--to", "core"}), "convert --to core");
  EXPECT_EQ(extents(image_path(), core.size()), before);
  EXPECT_TRUE(read_bytes(image_path()) == core);
}

// gdb opens only cores: `imgtool gdb` hands it an unnamed core-form copy,
// and the ckpt commands (imgtool info --json on that copy) work on it.
TEST_F(ExecForm, ImgtoolGdbOpensTheExecForm) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:0"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--exec"}));
  RunResult r = imgtool_run({"gdb", image_path(), "--", "-batch", "-nx", "-ex", "thread apply all bt", "-ex",
                             "ckpt info"});
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.out << r.err;
  EXPECT_NE(r.out.find(" main ("), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find(std::to_string(pid_)), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.err.find("not a core"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("is not a core dump"), std::string::npos) << r.err;
  // The image itself is untouched (still runs).
  EXPECT_EQ(header_at(read_bytes(image_path()), 0).e_type, ET_DYN);
}

// A tree image in the exec form (FORMAT.md §12.3 over §12.1): the head and
// the launcher are the whole file's, every embedded core keeps its core
// form at its place; extract, gdb --pid and verify read it, and ./FILE
// restores the whole tree, every process's whole state as before the
// dump (compare_tree_), also with --pidns.
TEST_F(ExecForm, ATreeImageRunsWholeAndItsProcessesExtract) {
  compare_tree_ = true;
  restore_command_ = [&](const std::vector<std::string> &args) { return run_exec(image_path(), args); };
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_TREE_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--exec"}));
  std::string bytes = read_bytes(image_path());
  EXPECT_EQ(header_at(bytes, 0).e_type, ET_DYN);
  auto image = img::ImageReader::open(image_path());
  ASSERT_TRUE(image) << image.error().message();
  ASSERT_TRUE(image->exec_form());
  auto view = img::decode_ckpt(*image);
  ASSERT_TRUE(view) << view.error().message();
  int live = 0;
  for (const img::TreeRecord &r : view->tree.records) {
    if (r.flags & img::kTreeZombie) continue;
    live++;
    Elf64_Ehdr h = header_at(bytes, r.offset);
    EXPECT_EQ(h.e_type, ET_CORE) << r.pid;
    EXPECT_EQ(h.e_phoff, 128u) << r.pid;
    std::string core = tmp_.file("core." + std::to_string(r.pid));
    expect_ok(imgtool_run({"extract", image_path(), "--pid", std::to_string(r.pid), "-o", core}), "extract");
    // Byte for byte, unless the core takes pages shared copy-on-write from
    // an earlier core (§9.23): extract then puts them in (cow_tree_test.cc).
    auto embedded = image->embedded(r);
    ASSERT_TRUE(embedded) << embedded.error().message();
    auto embedded_view = img::decode_ckpt(*embedded);
    ASSERT_TRUE(embedded_view) << embedded_view.error().message();
    if (embedded_view->cow_pages.records.empty()) {
      EXPECT_TRUE(read_bytes(core) == bytes.substr(r.offset, r.size)) << "extract of " << r.pid;
    }
    expect_ok(imgtool_run({"verify", "--intact", core}), "verify --intact of an extracted core");
  }
  EXPECT_EQ(live, 6) << "A, G, B, C, D, T live below the root";
  const img::TreeRecord &first = view->tree.records.at(0);
  RunResult g = imgtool_run({"gdb", image_path(), "--pid", std::to_string(first.pid), "--", "-batch", "-nx", "-ex",
                             "ckpt info"});
  EXPECT_TRUE(g.exited && g.exit_code == 0) << g.status() << "\n" << g.out << g.err;
  EXPECT_NE(g.out.find(std::to_string(first.pid)), std::string::npos) << g.out << g.err;
  expect_ok(imgtool_run({"verify", image_path()}), "verify of the exec-form tree");
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  ASSERT_NO_FATAL_FAILURE(run_exec_expect(moved(), 0, {"--pidns"}));
}

// `imgtool binfmt install` inside a user+mount namespace (binfmt_misc is
// per user namespace since Linux 6.7, so the host's rules are untouched):
// the core form then runs as ./IMAGE through the launcher. A restore needs
// privileges over the host's pid namespace, which the namespace lacks: the
// launcher is reached (its --help, and the one-line refusal) but nothing
// is restored in there.
TEST_F(ExecForm, BinfmtRuleRunsTheCoreFormInAUserNamespace) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:0"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_EQ(chmod(image_path().c_str(), 0700), 0);
  std::string tool = imgtool(), image = image_path();
  std::string script = "mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && " + tool +
                       " binfmt install && " + tool + " binfmt status && " + image + " --help && { " + image +
                       "; echo rc=$?; } && " + tool + " binfmt uninstall && " + tool + " binfmt status";
  RunResult r = test::run({"/usr/bin/unshare", "--user", "--map-root-user", "--mount", "/bin/sh", "-c", script}, 60);
  EXPECT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.out << r.err;
  EXPECT_NE(r.out.find("installed (enabled): /proc/sys/fs/binfmt_misc/ckpt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("usage: " + image), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find(image + ": restore: not permitted"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("removed /proc/sys/fs/binfmt_misc/ckpt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.rfind("not installed"), std::string::npos) << r.out;
  // The host's registrations: none of ours.
  EXPECT_NE(access("/proc/sys/fs/binfmt_misc/ckpt", F_OK), 0);
}

TEST_F(ExecForm, DamagedExecHeadersAreRefusedWithOneLine) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:0"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--exec"}));
  std::string good = read_bytes(image_path());
  std::string damaged = tmp_.file("damaged.elf");
  auto with_byte = [&](size_t at) {
    std::string b = good;
    b[at] ^= 0x10;
    ASSERT_TRUE(write_file(damaged, b));
  };
  // The exec header's program header offset.
  ASSERT_NO_FATAL_FAILURE(with_byte(offsetof(Elf64_Ehdr, e_phoff) + 1));
  expect_one_line(imgtool_run({"verify", damaged}), "imgtool verify: ", "exec ELF header at offset 0 is damaged");
  expect_one_line(imgtool_run({"info", damaged}), "imgtool info: ", "exec ELF header at offset 0 is damaged");
  expect_one_line(restore(damaged), "imgtool restore: ", "exec ELF header at offset 0 is damaged");
  // A byte of the launcher.
  ASSERT_NO_FATAL_FAILURE(with_byte(good.size() - 5000));
  expect_one_line(imgtool_run({"verify", damaged}), "imgtool verify: ", "checksum mismatch in the launcher");
  // The saved core header: the integrity note covers it.
  ASSERT_NO_FATAL_FAILURE(with_byte(64 + offsetof(Elf64_Ehdr, e_flags)));
  expect_one_line(imgtool_run({"verify", damaged}), "imgtool verify: ", "ELF and program headers");
  // A launcher cut short.
  ASSERT_TRUE(write_file(damaged, good.substr(0, good.size() - 4096)));
  expect_one_line(imgtool_run({"verify", damaged}), "imgtool verify: ", "launcher");
}

// Restore reads nothing of the launcher's bytes and does not hash them
// (decision 190): a damaged launcher byte is verify's to report, and the
// core image it follows still restores, lazily too.
TEST_F(ExecForm, RestoreDoesNotHashTheLauncher) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_COUNTER_PATH, {"exit:7"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill({"--exec"}));
  std::string bytes = read_bytes(image_path());
  bytes[bytes.size() - 5000] ^= 0x10;
  ASSERT_TRUE(write_file(image_path(), bytes));
  expect_one_line(imgtool_run({"verify", image_path()}), "imgtool verify: ", "checksum mismatch in the launcher");
  expect_one_line(imgtool_run({"info", image_path()}), "imgtool info: ", "checksum mismatch in the launcher");
  ASSERT_NO_FATAL_FAILURE(restore_expect(7, {"--lazy"}));
}

}  // namespace
}  // namespace ckpt::restoretest
