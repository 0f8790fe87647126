// The gdb commands of gdb-scripts/ckpt.py and `imgtool gdb`, on an image of a
// real process (tests/programs/gdbscripts_target.c) whose descriptors,
// signals and memory have known values. Every check compares values: the
// numbers, paths and offsets the target set up, the handler symbol gdb finds,
// the image id `imgtool info --json` reports.
#include "gdbscripts_common.h"

using namespace ckpt::gdbscripts_test;

namespace {

TEST_F(GdbScripts, InfoCheckpointShowsTheIdentityFromImgtool) {
  RunResult r = run_gdb(image_, {"info checkpoint", "printf \"id=%s\\n\", $ckpt_image_id"});
  ASSERT_TRUE(r.exited) << r.status();
  expect_clean(r);
  const json &id = info_["identity"];
  std::string image_id = id["image_id"];
  EXPECT_EQ(image_id.size(), 32u);
  EXPECT_EQ(labelled(r.out, "Image id:"), image_id) << r.out;
  EXPECT_EQ(labelled(r.out, "Image:"), std::filesystem::canonical(image_).string()) << r.out;
  EXPECT_EQ(labelled(r.out, "Checkpoint id:"),
            std::to_string(id["checkpoint_id"].get<long>()) + " (root pid " + std::to_string(target_->pid()) + ")")
      << r.out;
  EXPECT_EQ(labelled(r.out, "Created:"),
            id["created"].get<std::string>() + " on host " + id["hostname"].get<std::string>());
  EXPECT_EQ(labelled(r.out, "Kernel:"), id["kernel_release"].get<std::string>());
  EXPECT_EQ(labelled(r.out, "Writer:"), id["writer"].get<std::string>());
  EXPECT_EQ(labelled(r.out, "Incremental:"), "no");
  EXPECT_EQ(labelled(r.out, "Parent chain:"), "none (a full image)");
  std::string restorable = info_["restorable"].get<bool>()
                               ? "yes"
                               : "no: " + info_["not_restorable_because"].get<std::string>();
  EXPECT_EQ(labelled(r.out, "Restorable here:"), restorable);
  // Set when the script was sourced on the loaded core.
  EXPECT_EQ(count(r.out, "id=" + image_id + "\n"), 1) << r.out;
}

TEST_F(GdbScripts, ConvenienceVariableFollowsCoreFileAndRefresh) {
  // Script first, no core: void. Then core-file: set by the hooks.
  RunResult r = run_gdb("", {"p $ckpt_image_id", "core-file " + image_, "printf \"after-load=%s\\n\", $ckpt_image_id",
                             "ckpt refresh", "printf \"after-refresh=%s\\n\", $ckpt_image_id"},
                        "");
  ASSERT_TRUE(r.exited) << r.status();
  expect_clean(r);
  std::string image_id = info_["identity"]["image_id"];
  EXPECT_EQ(count(r.out, "$1 = void"), 1) << r.out;
  EXPECT_EQ(count(r.out, "after-load=" + image_id + "\n"), 1) << r.out;
  EXPECT_EQ(count(r.out, "ckpt: image " + image_id + " (" + std::filesystem::canonical(image_).string() + ")"), 1)
      << r.out;
  EXPECT_EQ(count(r.out, "after-refresh=" + image_id + "\n"), 1) << r.out;
}

// Loaded before the core, as a system gdbinit loader (docs/GDB.md) does.
TEST_F(GdbScripts, ConvenienceVariableWhenLoadedBeforeTheCore) {
  RunResult r = run({"env", "CKPT_IMGTOOL=" + kImgtool, gdb(), "-batch", "-nx", "-ix", kScript, "-ex",
                     "printf \"id=%s\\n\", $ckpt_image_id", "-c", image_},
                    120);
  ASSERT_TRUE(r.exited) << r.status();
  expect_clean(r);
  EXPECT_EQ(count(r.out, "id=" + info_["identity"]["image_id"].get<std::string>() + "\n"), 1) << both(r);
}

TEST_F(GdbScripts, FdsShowNumbersTypesPositionsFlagsAndPaths) {
  RunResult r = run_gdb(image_, {"ckpt fds"});
  ASSERT_TRUE(r.exited) << r.status();
  expect_clean(r);
  auto rows = table_after(r.out, "FD");
  std::map<std::string, std::vector<std::string>> by_fd;
  for (auto &row : rows) {
    ASSERT_EQ(row.size(), 5u) << "row: " << row[0] << "\n" << r.out;
    by_fd[row[0]] = row;
  }
  // Exactly the image's descriptors.
  ASSERT_EQ(by_fd.size(), process()["fds"].size()) << r.out;
  for (const json &f : process()["fds"]) {
    std::string n = std::to_string(f["fd"].get<int>());
    ASSERT_TRUE(by_fd.count(n)) << "fd " << n << " missing\n" << r.out;
    EXPECT_EQ(by_fd[n][1], f["type"]);
    EXPECT_EQ(by_fd[n][2], std::to_string(f["pos"].get<long>()));
    EXPECT_EQ(by_fd[n][4], f["path"]);
  }
  // The values the target set up.
  ASSERT_TRUE(by_fd.count("42")) << r.out;
  EXPECT_EQ(by_fd["42"][1], "regular");
  EXPECT_EQ(by_fd["42"][2], "1234");
  EXPECT_EQ(by_fd["42"][3].rfind("O_RDWR", 0), 0u) << by_fd["42"][3];
  EXPECT_EQ(by_fd["42"][4], std::filesystem::canonical(data_).string());
  ASSERT_TRUE(by_fd.count("50") && by_fd.count("51")) << r.out;
  EXPECT_EQ(by_fd["50"][1], "pipe_read");
  EXPECT_EQ(by_fd["50"][3], "O_RDONLY");
  EXPECT_EQ(by_fd["51"][1], "pipe_write");
  EXPECT_EQ(by_fd["51"][3], "O_WRONLY");
  EXPECT_EQ(by_fd["50"][4], by_fd["51"][4]) << "both ends name the same pipe";
  EXPECT_TRUE(std::regex_match(by_fd["50"][4], std::regex(R"(pipe:\[\d+\])"))) << by_fd["50"][4];
}

TEST_F(GdbScripts, SignalsNameTheHandlerAndShowPerThreadMasks) {
  RunResult r = run_gdb(image_, {"ckpt signals"});
  ASSERT_TRUE(r.exited) << r.status();
  expect_clean(r);
  std::map<std::string, std::vector<std::string>> actions;
  for (auto &row : table_after(r.out, "SIGNAL")) actions[row[0]] = row;
  ASSERT_TRUE(actions.count("SIGUSR1")) << r.out;
  // The handler address the target printed, named by gdb from the program.
  char expected[64];
  std::snprintf(expected, sizeof expected, "0x%llx <on_usr1>", hex(target_->value("on_usr1")));
  EXPECT_EQ(actions["SIGUSR1"][1], expected) << r.out;
  EXPECT_NE(actions["SIGUSR1"][2].find("SA_RESTART"), std::string::npos) << r.out;
  ASSERT_TRUE(actions.count("SIGPIPE")) << r.out;
  EXPECT_EQ(actions["SIGPIPE"][1], "SIG_IGN");
  EXPECT_FALSE(actions.count("SIGUSR2")) << "SIGUSR2 keeps its default disposition\n" << r.out;

  std::map<std::string, std::vector<std::string>> threads;  // by LWP
  for (auto &row : table_after(r.out, "THREAD")) {
    ASSERT_EQ(row.size(), 5u) << r.out;
    threads[row[1]] = row;
  }
  ASSERT_EQ(threads.size(), 2u) << r.out;
  std::string main_tid = std::to_string(target_->pid());
  std::string blocker_tid = target_->value("blocker_tid");
  ASSERT_TRUE(threads.count(main_tid) && threads.count(blocker_tid)) << r.out;
  EXPECT_EQ(threads[main_tid][0], "Thread 1");
  EXPECT_EQ(threads[main_tid][3], "none") << "main thread blocks nothing";
  EXPECT_EQ(threads[main_tid][4], "none");
  EXPECT_EQ(threads[blocker_tid][0], "Thread 2");
  EXPECT_EQ(threads[blocker_tid][2], "blocker");
  EXPECT_EQ(threads[blocker_tid][3], "SIGUSR2") << "blocked in the blocker thread";
  EXPECT_EQ(threads[blocker_tid][4], "SIGUSR2") << "pending for the blocker thread";
  EXPECT_EQ(count(r.out, "Pending for the whole process: none"), 1) << r.out;
}

std::string expected_source(const json &m) {
  std::vector<std::string> kinds;
  for (auto [key, name] : {std::pair{"stored_bytes", "image"}, {"file_bytes", "file"}, {"zero_bytes", "zero"},
                           {"parent_bytes", "parent"}, {"absent_bytes", "absent"}})
    if (m[key].get<unsigned long long>()) kinds.push_back(name);
  return kinds.size() == 1 ? kinds[0] : "";
}

TEST_F(GdbScripts, MapsShowWhereEveryRangesBytesComeFrom) {
  char anon[32], filemap[32];
  std::snprintf(anon, sizeof anon, "0x%llx", hex(target_->value("anon")));
  std::snprintf(filemap, sizeof filemap, "0x%llx", hex(target_->value("filemap")));
  RunResult r = run_gdb(image_, {"ckpt maps", "echo ==anon==\\n", std::string("ckpt maps ") + anon,
                                 "echo ==file==\\n", std::string("ckpt maps ") + filemap});
  ASSERT_TRUE(r.exited) << r.status();
  expect_clean(r);
  size_t anon_at = r.out.find("==anon==\n"), file_at = r.out.find("==file==\n");
  ASSERT_TRUE(anon_at != std::string::npos && file_at != std::string::npos && anon_at < file_at) << r.out;
  auto rows = table_after(r.out.substr(0, anon_at), "START");
  auto anon_rows = table_after(r.out.substr(anon_at, file_at - anon_at), "START");
  auto file_rows = table_after(r.out.substr(file_at), "START");
  const json &memory = info_["memory"];
  ASSERT_EQ(rows.size(), memory.size()) << r.out;
  for (size_t i = 0; i < rows.size(); i++) {
    const json &m = memory[i];
    const auto &row = rows[i];
    ASSERT_GE(row.size(), 6u) << r.out;
    EXPECT_EQ(hex(row[0]), hex(m["start"]));
    EXPECT_EQ(hex(row[1]), hex(m["end"]));
    EXPECT_EQ(row[2], m["prot"]);
    EXPECT_EQ(row[3], m["kind"]);
    std::string single = expected_source(m);
    if (!single.empty()) {
      EXPECT_EQ(row[5], single) << "mapping " << row[0];
    } else {
      for (auto [key, name] : {std::pair{"stored_bytes", "image "}, {"file_bytes", "file "},
                               {"zero_bytes", "zero "}, {"parent_bytes", "parent "}, {"absent_bytes", "absent "}})
        EXPECT_EQ(row[5].find(name) != std::string::npos, m[key].get<unsigned long long>() != 0)
            << "mapping " << row[0] << " source " << row[5];
    }
    if (!m["path"].get<std::string>().empty()) {
      ASSERT_EQ(row.size(), 7u) << r.out;
      EXPECT_EQ(row[6], m["path"]);
    }
  }
  // The target's own mappings, alone with an address argument.
  ASSERT_EQ(anon_rows.size(), 1u) << r.out;
  EXPECT_LE(hex(anon_rows[0][0]), hex(anon));
  EXPECT_GT(hex(anon_rows[0][1]), hex(anon));
  // One page written, the rest never touched.
  EXPECT_NE(anon_rows[0][5].find("image"), std::string::npos) << anon_rows[0][5];
  EXPECT_NE(anon_rows[0][5].find("zero"), std::string::npos) << anon_rows[0][5];
  ASSERT_EQ(file_rows.size(), 1u) << r.out;
  EXPECT_EQ(file_rows[0][0], filemap);
  EXPECT_EQ(file_rows[0][2], "r--p");
  EXPECT_EQ(file_rows[0][5], "file") << "a private file mapping never written: read from the file";
  EXPECT_EQ(file_rows[0][6], std::filesystem::canonical(data_).string());
  // Kernel-provided [vvar] is not saved.
  bool saw_vvar = false;
  for (const auto &row : rows)
    if (row.size() == 7 && row[6] == "[vvar]") {
      saw_vvar = true;
      EXPECT_EQ(row[5], "absent");
    }
  EXPECT_TRUE(saw_vvar) << r.out;
}

TEST_F(GdbScripts, TreeListsTheProcessWithPidAndPpid) {
  RunResult r = run_gdb(image_, {"ckpt tree"});
  ASSERT_TRUE(r.exited) << r.status();
  expect_clean(r);
  EXPECT_EQ(count(r.out, "Processes in this image (1):"), 1) << r.out;
  auto rows = table_after(r.out, "PID");
  ASSERT_EQ(rows.size(), 1u) << r.out;
  // "*" (the process gdb shows), pid, ppid, pgid, sid, threads, name, program
  ASSERT_EQ(rows[0].size(), 8u) << r.out;
  EXPECT_EQ(rows[0][0], "*");
  EXPECT_EQ(rows[0][1], std::to_string(target_->pid()));
  EXPECT_EQ(rows[0][2], std::to_string(getpid())) << "the test spawned the target";
  EXPECT_EQ(rows[0][3], std::to_string(process()["pgid"].get<int>()));
  EXPECT_EQ(rows[0][4], std::to_string(process()["sid"].get<int>()));
  EXPECT_EQ(rows[0][5], "2");
  EXPECT_EQ(rows[0][6], "gdbscripts_targ");
  EXPECT_EQ(rows[0][7], std::filesystem::canonical(kTargetProgram).string() + " [root]");
}

TEST_F(GdbScripts, ImgtoolGdbTakesTheProgramFromTheImage) {
  RunResult r = run({kImgtool, "gdb", image_, "--", "-batch", "-ex", "ckpt signals", "-ex",
                     "python import os; print('imgtool=' + os.environ['CKPT_IMGTOOL'])", "-ex",
                     "printf \"id=%s\\n\", $ckpt_image_id"},
                    120);
  ASSERT_EQ(r.status(), "exit 0") << both(r);
  expect_clean(r);
  // No note on stderr: the program exists.
  EXPECT_EQ(count(r.err, "imgtool gdb:"), 0) << r.err;
  // The handler is named only if gdb loaded the program's symbols.
  EXPECT_EQ(count(r.out, "<on_usr1>"), 1) << r.out;
  EXPECT_EQ(count(r.out, "imgtool=" + std::filesystem::canonical(kImgtool).string() + "\n"), 1) << r.out;
  EXPECT_EQ(count(r.out, "id=" + info_["identity"]["image_id"].get<std::string>() + "\n"), 1) << r.out;
}

TEST_F(GdbScripts, ImgtoolGdbWithAnExplicitProgram) {
  RunResult r = run({kImgtool, "gdb", image_, kTargetProgram, "--", "-batch", "-ex", "info checkpoint", "-ex",
                     "info symbol on_usr1"},
                    120);
  ASSERT_EQ(r.status(), "exit 0") << both(r);
  expect_clean(r);
  EXPECT_EQ(labelled(r.out, "Image id:"), info_["identity"]["image_id"]) << r.out;
  EXPECT_EQ(count(r.out, "on_usr1 in section .text"), 1) << r.out;
}

TEST_F(GdbScripts, ImgtoolGdbRefusesWhatItCannotOpen) {
  RunResult missing = run({kImgtool, "gdb", dir_.file("nope.ckpt")});
  EXPECT_EQ(missing.status(), "exit 1");
  ASSERT_EQ(missing.err_lines().size(), 1u) << missing.err;
  EXPECT_NE(missing.err.find("nope.ckpt"), std::string::npos) << missing.err;
  RunResult bad_program = run({kImgtool, "gdb", image_, dir_.file("no-such-program")});
  EXPECT_EQ(bad_program.status(), "exit 1");
  EXPECT_EQ(bad_program.err_lines().size(), 1u) << bad_program.err;
  RunResult none = run({kImgtool, "gdb"});
  EXPECT_EQ(none.status(), "exit 1");
  EXPECT_EQ(none.err_lines().size(), 1u) << none.err;
  RunResult help = run({kImgtool, "gdb", "--help"});
  EXPECT_EQ(help.status(), "exit 0");
  EXPECT_NE(help.out.find("usage: imgtool gdb FILE [--pid N] [PROGRAM] [-- GDB-ARGS...]"), std::string::npos);
}

}  // namespace
