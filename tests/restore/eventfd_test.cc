// eventfds (issue 13, the first kind on the fd kind registry): a real
// program holding semaphore and plain eventfds, a dup of one, a counter
// above 2^32 and a zero one, dumped with --kill and restored; the program
// checks each counter, mode and flag itself (restore_eventfd.c). `info`
// shows each counter.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

using json = nlohmann::json;

class RestoreEventfd : public RestoreTest {
 protected:
  // The whole /proc state (fdinfo of every eventfd included) must come back.
  RestoreEventfd() { compare_state_ = true; }
};

TEST_F(RestoreEventfd, CounterSemaphoreAndFlagsComeBack) {
  ASSERT_NO_FATAL_FAILURE(start(RESTORE_EVENTFD_PATH));
  ASSERT_NO_FATAL_FAILURE(dump_kill());

  json j;
  ASSERT_NO_FATAL_FAILURE(info_json(&j));
  std::map<int, std::string> state;
  for (const json &f : j["processes"][0]["fds"])
    if (f["type"] == "eventfd") state[f["fd"].get<int>()] = f.value("state", "");
  EXPECT_EQ(state[40], "count 7, semaphore");
  EXPECT_EQ(state[41], "count 7, semaphore");
  EXPECT_EQ(state[42], "count " + std::to_string(0x123456789abULL));
  EXPECT_EQ(state[43], "count 0");
  RunResult text = imgtool_run({"info", image_path()});
  EXPECT_NE(text.out.find("(count 7, semaphore)"), std::string::npos) << text.out;

  ASSERT_NO_FATAL_FAILURE(restore_expect(0));
}

}  // namespace
}  // namespace ckpt::restoretest
