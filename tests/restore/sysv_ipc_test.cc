// SysV IPC (issue 13): a program in an IPC namespace of its own holds shm
// segments (attached read-write, not attached, attached read-only and
// marked for removal, SHM_LOCKed), a semaphore set and a message queue; it
// is dumped with --kill, which takes the namespace and every object with
// it, and restored: the program checks each id, key, mode, byte, value,
// message and attach address itself (restore_sysv.c). In the host's
// namespace an attached segment marked for removal comes back with its id,
// and a restore whose id another segment took says so in one line. A
// tree's processes attach one segment again.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

using json = nlohmann::json;

class RestoreSysvIpc : public RestoreTest {};

TEST_F(RestoreSysvIpc, OwnNamespaceComesBackWithEveryObject) {
  compare_state_ = true;  // and the whole /proc state (maps of the attaches included)
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SYSV_PATH, {"ns"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());

  json j;
  ASSERT_NO_FATAL_FAILURE(info_json(&j));
  EXPECT_EQ(j["ipc"]["namespace"], "own");
  std::map<std::string, std::vector<json>> by_kind;
  for (const json &o : j["ipc"]["objects"]) by_kind[o["kind"].get<std::string>()].push_back(o);
  ASSERT_EQ(by_kind["shm"].size(), 3u) << j["ipc"].dump();
  ASSERT_EQ(by_kind["sem"].size(), 1u);
  ASSERT_EQ(by_kind["msg"].size(), 1u);
  json a;
  for (const json &o : by_kind["shm"])
    if (o["id"] == std::stoi(program_->value("SHMID"))) a = o;
  ASSERT_TRUE(a.is_object()) << "no segment " << program_->value("SHMID") << " in " << j["ipc"].dump();
  EXPECT_EQ(a["key"], "0x5eed0001");
  EXPECT_EQ(a["size"], 3 * 4096 + 100);
  EXPECT_EQ(a["locked"], true);
  EXPECT_EQ(a["removed"], false);
  EXPECT_EQ(by_kind["sem"][0]["id"], std::stoi(program_->value("SEMID")));
  EXPECT_EQ(by_kind["sem"][0]["values"], json({5, 0, 42}));
  EXPECT_EQ(by_kind["msg"][0]["id"], std::stoi(program_->value("MSQID")));
  EXPECT_EQ(by_kind["msg"][0]["messages"].size(), 3u);
  RunResult text = imgtool_run({"info", image_path()});
  EXPECT_NE(text.out.find("SysV IPC (its own IPC namespace)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("values 5 0 42"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("3 messages, 3012 bytes"), std::string::npos) << text.out;

  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

// A tree in its own namespace: the segment's state is in the root's image
// once; the child's refers to it, and both attach the one segment again.
TEST_F(RestoreSysvIpc, SegmentSharedByATreeStaysShared) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SYSV_PATH, {"tree"}));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  RunResult i = imgtool_run({"info", "--json", image_path()});
  json j = json::parse(i.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << i.out;
  ASSERT_EQ(j["processes"].size(), 2u);
  ASSERT_EQ(j["ipc"]["objects"].size(), 1u) << j["ipc"].dump();
  EXPECT_EQ(j["ipc"]["objects"][0]["id"], 99);
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(RestoreSysvIpc, AttachedSegmentInTheHostNamespaceComesBackWithItsId) {
  compare_state_ = true;
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SYSV_PATH, {"host"}));
  int id = std::stoi(program_->value("SHMID"));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  // Marked for removal and attached only by the killed process: gone.
  struct shmid_ds ds{};
  ASSERT_LT(shmctl(id, IPC_STAT, &ds), 0) << "segment " << id << " outlived the dump --kill";
  RunResult i = imgtool_run({"info", "--json", image_path()});
  json j = json::parse(i.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << i.out;
  EXPECT_EQ(j["ipc"]["namespace"], "host");
  ASSERT_EQ(j["ipc"]["objects"].size(), 1u);
  EXPECT_EQ(j["ipc"]["objects"][0]["removed"], true);
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
  EXPECT_LT(shmctl(id, IPC_STAT, &ds), 0) << "segment " << id << " left behind by the restored program";
}

// `imgtool diff` and gdb's `ckpt fds` show SysV objects too: between two
// dumps that leave the program running, the test changes its segment's
// bytes and mode (and puts them back before the program checks them).
TEST_F(RestoreSysvIpc, DiffAndGdbShowTheObjects) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SYSV_PATH, {"host"}));
  int id = std::stoi(program_->value("SHMID"));
  std::string a = tmp_.file("a.img"), b = tmp_.file("b.img");
  RunResult d = dump(pid_, a);
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.err;
  auto *p = static_cast<unsigned char *>(shmat(id, nullptr, 0));
  ASSERT_NE(p, reinterpret_cast<void *>(-1)) << strerror(errno);
  unsigned char was = p[0];
  p[0] = static_cast<unsigned char>(was + 1);
  struct shmid_ds ds{};
  ASSERT_EQ(shmctl(id, IPC_STAT, &ds), 0);
  ds.shm_perm.mode = 0640;
  ASSERT_EQ(shmctl(id, IPC_SET, &ds), 0) << strerror(errno);
  d = dump(pid_, b);
  p[0] = was;
  ds.shm_perm.mode = 0600;
  EXPECT_EQ(shmctl(id, IPC_SET, &ds), 0) << strerror(errno);
  shmdt(p);
  ASSERT_TRUE(d.exited && d.exit_code == 0) << d.err;

  RunResult diff = imgtool_run({"diff", a, b, "--json"});
  ASSERT_TRUE(diff.exited && diff.exit_code == 0) << diff.err;
  json j = json::parse(diff.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << diff.out;
  EXPECT_EQ(j["same"], false);
  ASSERT_EQ(j["ipc"].size(), 1u) << j["ipc"].dump();
  EXPECT_EQ(j["ipc"][0]["change"], "changed");
  EXPECT_EQ(j["ipc"][0]["kind"], "shm");
  EXPECT_EQ(j["ipc"][0]["id"], id);
  EXPECT_EQ(j["ipc"][0]["fields"]["mode"], json({"0600", "0640"})) << j["ipc"].dump();
  EXPECT_EQ(j["ipc"][0]["contents_differ"], true);
  RunResult text = imgtool_run({"diff", a, b});
  EXPECT_NE(text.out.find("SysV IPC:\n  changed   shm " + std::to_string(id) + " key 0x0 mode 0600 -> 0640 "),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find(" contents differ\n"), std::string::npos) << text.out;
  RunResult same = imgtool_run({"diff", a, a, "--json"});
  json js = json::parse(same.out, nullptr, false);
  ASSERT_FALSE(js.is_discarded()) << same.out;
  EXPECT_TRUE(js["ipc"].empty()) << js["ipc"].dump();

  RunResult g = test::run({imgtool(), "gdb", b, "--", "-batch", "-ex", "ckpt fds"}, 120);
  EXPECT_TRUE(g.exited && g.exit_code == 0) << g.status() << "\n" << g.err;
  EXPECT_NE(g.out.find("SysV IPC objects (the host's IPC namespace):\n  shm " + std::to_string(id) +
                        " key 0x0 mode 0640"),
            std::string::npos)
      << g.out;
  EXPECT_NE(g.out.find(" bytes, marked for removal"), std::string::npos) << g.out;

  ASSERT_NO_FATAL_FAILURE(expect_original_finishes(60));
}

// The id the image needs, taken on this host by another segment (made
// with shm_next_id, as restore itself would): one line, nothing started.
TEST_F(RestoreSysvIpc, IdTakenOnTheHostIsRefusedInOneLine) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_SYSV_PATH, {"host"}));
  int id = std::stoi(program_->value("SHMID"));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_TRUE(write_file("/proc/sys/kernel/shm_next_id", std::to_string(id)));
  int other = shmget(0x5eed0777, 4096, IPC_CREAT | IPC_EXCL | 0600);
  ASSERT_EQ(other, id) << strerror(errno);
  ASSERT_NO_FATAL_FAILURE(go());
  RunResult r = restore(image_path());
  shmctl(other, IPC_RMID, nullptr);
  ASSERT_NO_FATAL_FAILURE(expect_one_line_failure(r, "SysV shm segment id " + std::to_string(id) + " is taken"));
  EXPECT_FALSE(pid_exists(pid_));
}

}  // namespace
}  // namespace ckpt::restoretest
