// timerfd, signalfd, inotify and POSIX timers (issue 13): real programs
// holding each, dumped with --kill and restored; each program checks
// itself (tests/programs/restore_{timerfd,signalfd,inotify,posix_timers}.c).
// `imgtool info` shows each kind with its state.
#include <gtest/gtest.h>

#include <map>

#include <nlohmann/json.hpp>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

using json = nlohmann::json;

class RestoreEventFds : public RestoreTest {
 protected:
  // fd number -> "state" of every fd of `type` in `imgtool info --json`.
  std::map<int, std::string> states_of(const std::string &type) {
    RunResult i = imgtool_run({"info", "--json", image_path()});
    EXPECT_TRUE(i.exited && i.exit_code == 0) << i.err;
    json j = json::parse(i.out, nullptr, false);
    std::map<int, std::string> out;
    if (j.is_discarded()) {
      ADD_FAILURE() << i.out;
      return out;
    }
    EXPECT_EQ(j["restorable"], true) << i.out;
    for (const json &f : j["processes"][0]["fds"])
      if (f["type"] == type) out[f["fd"].get<int>()] = f.value("state", "");
    return out;
  }
  // start(program), dump_kill(), and the `count` states of its fds of
  // `type` into *states. Call through ASSERT_NO_FATAL_FAILURE.
  void start_dump_states(const std::string &program, const std::string &type, size_t count,
                         std::map<int, std::string> *states) {
    ASSERT_NO_FATAL_FAILURE(start(program));
    ASSERT_NO_FATAL_FAILURE(dump_kill());
    *states = states_of(type);
    ASSERT_EQ(states->size(), count);
  }
};

TEST_F(RestoreEventFds, TimerfdsFireOnTimeWithTheirTicks) {
  std::map<int, std::string> states;
  ASSERT_NO_FATAL_FAILURE(start_dump_states(RESTORE_TIMERFD_PATH, "timerfd", 5, &states));
  EXPECT_EQ(states[40].rfind("clock 1, next in ", 0), 0u) << states[40];
  EXPECT_NE(states[40].find(", interval 200000000 ns, ticks 0"), std::string::npos) << states[40];
  EXPECT_EQ(states[41], "clock 1, disarmed, ticks 1");
  EXPECT_NE(states[42].find("interval 20000000 ns"), std::string::npos) << states[42];
  EXPECT_NE(states[43].find(", abstime, cancel on set"), std::string::npos) << states[43];
  EXPECT_EQ(states[44], "clock 7, disarmed, ticks 0");
  RunResult text = imgtool_run({"info", image_path()});
  EXPECT_NE(text.out.find("(clock 1, disarmed, ticks 1)"), std::string::npos) << text.out;
  // gdb's `ckpt fds` lists each kind's state after the table.
  RunResult g = gdb_ckpt_fds();
  EXPECT_TRUE(g.exited && g.exit_code == 0) << g.status() << "\n" << g.err;
  EXPECT_NE(g.out.find("State of their kinds:\n"), std::string::npos) << g.out;
  EXPECT_NE(g.out.find("\n  fd 41 timerfd: clock 1, disarmed, ticks 1\n"), std::string::npos) << g.out;
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(RestoreEventFds, SignalfdsReadSignalsSentAfterRestore) {
  std::map<int, std::string> states;
  ASSERT_NO_FATAL_FAILURE(start_dump_states(RESTORE_SIGNALFD_PATH, "signalfd", 2, &states));
  // SIGUSR1 (10) and SIGUSR2 (12): bits 9 and 11.
  EXPECT_EQ(states[40], "sigmask 0000000000000a00");
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(RestoreEventFds, InotifyWatchesKeepTheirNumbers) {
  std::map<int, std::string> states;
  ASSERT_NO_FATAL_FAILURE(start_dump_states(RESTORE_INOTIFY_PATH, "inotify", 1, &states));
  EXPECT_EQ(states[40].rfind("4 watches: wd 1 mask 0x2 " + dir() + "/a, wd 3 ", 0), 0u) << states[40];
  EXPECT_NE(states[40].find(", wd 5 mask 0x4 " + dir() + "/link"), std::string::npos) << states[40];
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

TEST_F(RestoreEventFds, PosixTimersKeepTheirIdsAndFire) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_POSIX_TIMERS_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  json j;
  ASSERT_NO_FATAL_FAILURE(info_json(&j));
  EXPECT_EQ(j["restorable"], true) << j.dump();
  std::vector<int> ids;
  for (const json &t : j["processes"][0]["timers"])
    if (t["kind"] == "posix") ids.push_back(t.value("id", -1));
  EXPECT_EQ(ids, (std::vector<int>{0, 2, 3}));
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

}  // namespace
}  // namespace ckpt::restoretest
