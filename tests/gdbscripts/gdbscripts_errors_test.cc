// The gdb commands of gdb-scripts/ckpt.py and `imgtool gdb` on what is not
// a good image: a plain gcore, a damaged image, no core or no imgtool, no
// program; and an incremental image's parent.
#include "gdbscripts_common.h"

using namespace ckpt::gdbscripts_test;

namespace {

TEST_F(GdbScripts, PlainGcoreGivesOneClearLinePerCommand) {
  std::string prefix = dir_.file("plain");
  RunResult g = run({"gcore", "-o", prefix, std::to_string(target_->pid())}, 120);
  ASSERT_EQ(g.status(), "exit 0") << both(g);
  std::string core = prefix + "." + std::to_string(target_->pid());
  const std::vector<std::string> commands = {"info checkpoint", "ckpt fds", "ckpt signals", "ckpt maps",
                                             "ckpt tree", "ckpt refresh"};
  RunResult r = run_gdb(core, commands);
  ASSERT_TRUE(r.exited) << r.status();
  expect_clean(r);
  std::string message = "ckpt: this core is not a ckpt image: " + std::filesystem::canonical(core).string() +
                        " is an ordinary core file (no CKPT notes)\n";
  EXPECT_EQ(count(r.err, message), int(commands.size())) << both(r);
  EXPECT_EQ(count(r.err, "ckpt:"), int(commands.size())) << r.err;
}

// Flips one byte inside the data of the last PT_LOAD that has file bytes.
bool damage_memory(const std::string &path) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  Elf64_Ehdr eh;
  if (!f.read(reinterpret_cast<char *>(&eh), sizeof eh)) return false;
  uint64_t where = 0;
  for (int i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    f.seekg(eh.e_phoff + uint64_t(i) * sizeof ph);
    if (!f.read(reinterpret_cast<char *>(&ph), sizeof ph)) return false;
    if (ph.p_type == PT_LOAD && ph.p_filesz > 0) where = ph.p_offset + ph.p_filesz / 2;
  }
  if (!where) return false;
  char c;
  f.seekg(where);
  f.read(&c, 1);
  c ^= 0x55;
  f.seekp(where);
  f.write(&c, 1);
  return bool(f);
}

TEST_F(GdbScripts, DamagedImageGivesOneClearLinePerCommand) {
  std::string bad = dir_.file("damaged.ckpt");
  std::filesystem::copy_file(image_, bad);
  ASSERT_TRUE(damage_memory(bad));
  RunResult info = run({kImgtool, "info", "--json", bad});
  ASSERT_EQ(info.status(), "exit 1") << "imgtool must refuse the damaged copy";
  const std::vector<std::string> commands = {"info checkpoint", "ckpt fds", "ckpt signals", "ckpt maps",
                                             "ckpt tree", "ckpt refresh", "p $ckpt_image_id"};
  RunResult r = run_gdb(bad, commands);
  ASSERT_TRUE(r.exited) << r.status();
  expect_clean(r);
  EXPECT_EQ(count(r.err, "ckpt: this core is not a valid ckpt image: "), int(commands.size()) - 1) << both(r);
  EXPECT_EQ(count(r.err, "checksum"), int(commands.size()) - 1) << r.err;
  // No id for an image imgtool refuses: the variable is void.
  EXPECT_EQ(count(r.out, "$1 = void\n"), 1) << r.out;
  // imgtool gdb still opens it, and the commands say the same (gdb -batch
  // exits 1 because its last command failed).
  RunResult g = run({kImgtool, "gdb", bad, "--", "-batch", "-ex", "ckpt fds"}, 120);
  ASSERT_TRUE(g.exited) << both(g);
  expect_clean(g);
  EXPECT_EQ(count(g.err, "ckpt: this core is not a valid ckpt image: "), 1) << both(g);
}

TEST_F(GdbScripts, NoCoreOrNoImgtoolGiveOneClearLine) {
  RunResult none = run_gdb("", {"ckpt fds", "info checkpoint"}, "");
  ASSERT_TRUE(none.exited) << none.status();
  expect_clean(none);
  EXPECT_EQ(count(none.err, "ckpt: no core file is loaded"), 2) << both(none);

  RunResult no_tool = run_gdb(image_, {"ckpt maps"}, kTargetProgram, dir_.file("no-imgtool"));
  ASSERT_TRUE(no_tool.exited) << no_tool.status();
  expect_clean(no_tool);
  EXPECT_EQ(count(no_tool.err, "ckpt: cannot run imgtool"), 1) << both(no_tool);
}

// The program the image names is gone: imgtool gdb starts gdb without it
// and says so in one line.
TEST(GdbScriptsStandalone, ImgtoolGdbWithoutTheProgramSaysSoOnce) {
  ASSERT_NE(gdb(), "");
  TempDir dir;
  std::string copy = dir.file("vanishing");
  std::filesystem::copy_file(kTargetProgram, copy);
  std::string image = dir.file("v.ckpt");
  {
    Target t({copy, dir.file("data.txt")});
    ASSERT_TRUE(t.ready()) << t.error();
    RunResult d = run({kImgtool, "dump", "--pid", std::to_string(t.pid()), "-o", image}, 120);
    ASSERT_EQ(d.status(), "exit 0") << d.err;
  }
  std::filesystem::remove(copy);
  RunResult info = run({kImgtool, "info", "--json", image});
  ASSERT_EQ(info.status(), "exit 0") << info.err;
  std::string image_id = json::parse(info.out)["identity"]["image_id"];
  RunResult r = run({kImgtool, "gdb", image, "--", "-batch", "-ex", "info checkpoint", "-ex", "ckpt fds"}, 120);
  ASSERT_EQ(r.status(), "exit 0") << both(r);
  expect_clean(r);
  std::vector<std::string> notes;
  for (const std::string &l : r.err_lines())
    if (l.rfind("imgtool gdb:", 0) == 0) notes.push_back(l);
  ASSERT_EQ(notes.size(), 1u) << r.err;
  EXPECT_EQ(notes[0], "imgtool gdb: the program " + copy + " no longer exists; starting gdb without it");
  EXPECT_EQ(labelled(r.out, "Image id:"), image_id) << r.out;
  EXPECT_NE(r.out.find("1234"), std::string::npos) << r.out;
}

// An incremental image (synthetic): the parent shows in `info checkpoint`,
// parent-sourced bytes in `ckpt maps`.
TEST(GdbScriptsStandalone, IncrementalImageShowsParentAndParentBytes) {
  ASSERT_NE(gdb(), "");
  TempDir dir;
  std::string image = dir.file("incr.ckpt");
  RunResult mk = run({kSynthetic, image, "--parent"});
  ASSERT_EQ(mk.status(), "exit 0") << mk.err;
  RunResult info = run({kImgtool, "info", "--json", image});
  ASSERT_EQ(info.status(), "exit 0") << info.err;
  json j = json::parse(info.out);
  RunResult r = run_gdb(image, {"info checkpoint", "ckpt maps"}, "");
  ASSERT_TRUE(r.exited) << r.status();
  expect_clean(r);
  EXPECT_EQ(labelled(r.out, "Incremental:"), "yes");
  EXPECT_EQ(labelled(r.out, "Parent:"), j["parent"]["image_id"].get<std::string>() + " at " +
                                            j["parent"]["path_hint"].get<std::string>());
  ASSERT_FALSE(j["restorable"].get<bool>());
  EXPECT_EQ(labelled(r.out, "Restorable here:"), "no: " + j["not_restorable_because"].get<std::string>());
  int parent_rows = 0;
  for (const auto &row : table_after(r.out, "START"))
    if (row.size() >= 6 && row[5].find("parent") != std::string::npos) parent_rows++;
  int expected = 0;
  for (const json &m : j["memory"])
    if (m["parent_bytes"].get<unsigned long long>()) expected++;
  EXPECT_GT(expected, 0);
  EXPECT_EQ(parent_rows, expected) << r.out;
  EXPECT_EQ(count(r.out, "Note: gdb reads 'parent' bytes"), 1) << r.out;
}

}  // namespace
