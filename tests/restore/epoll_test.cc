// epoll (issue 13): a real program (restore_epoll.c) with two epoll fds
// over a pipe, eventfds, a socketpair and each other, with EPOLLET,
// EPOLLONESHOT (fired) and EPOLLEXCLUSIVE entries; dumped with --kill and
// restored, it checks its interest lists (fdinfo) and what epoll_wait
// reports itself. `info` lists the targets.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

using json = nlohmann::json;

TEST_F(RestoreTest, EpollInterestListsAndReadinessComeBack) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_EPOLL_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  RunResult i = test::run({imgtool(), "info", "--json", image_path()}, 60);
  ASSERT_TRUE(i.exited && i.exit_code == 0) << i.err;
  json j = json::parse(i.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << i.out;
  std::map<int, std::string> state;
  for (const json &f : j["processes"][0]["fds"])
    if (f["type"] == "epoll") state[f["fd"].get<int>()] = f.value("state", "");
  // The kernel adds EPOLLERR|EPOLLHUP (0x18) to every entry; the list's
  // order is the kernel's.
  EXPECT_EQ(state[50].rfind("6 targets: ", 0), 0u) << state[50];
  for (const char *t : {"fd 40 events 0x19 data 0x6f", "fd 41 events 0x19 data 0xde", "fd 42 events 0x19 data 0x14d",
                        "fd 43 events 0x19 data 0x1bc", "fd 44 events 0x80000019 data 0x22b",
                        "fd 45 events 0x40000000 data 0x29a"})
    EXPECT_NE(state[50].find(t), std::string::npos) << t << " not in " << state[50];
  EXPECT_NE(state[51].find("fd 40 events 0x10000019 data 0x309"), std::string::npos) << state[51];
  EXPECT_NE(state[51].find("fd 50 events 0x19 data 0x378"), std::string::npos) << state[51];
  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

}  // namespace
}  // namespace ckpt::restoretest
