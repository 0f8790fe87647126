// Real servers restored (issue 13): a python3 asyncio echo server with a
// client (this test) connected mid-stream, node with a setInterval timer
// and an HTTP server, a JVM with several threads answering over TCP. Each
// is dumped with --kill and restored detached; the test, outside the
// dumped tree, goes on talking to it: the asyncio client on the very
// connection it had, without noticing.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "restore_common.h"

namespace ckpt::restoretest {
namespace {

std::string source(const std::string &name) { return std::string(TCP_SERVERS_DIR) + "/" + name; }

class RestoreServers : public RestoreTest {
 protected:
  void start_server(const std::vector<std::string> &argv, int ready_timeout_s = 60) {
    Program::Options o;
    o.log = log_path();
    o.cwd = dir();
    o.ready_timeout_s = ready_timeout_s;
    ASSERT_NO_FATAL_FAILURE(start_argv(argv, o));
    port_ = std::atoi(program_->value("port").c_str());
    ASSERT_GT(port_, 0) << "no port printed";
  }

  int connect_to_server() {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(port_));
    EXPECT_EQ(connect(c, reinterpret_cast<sockaddr *>(&a), sizeof a), 0) << strerror(errno);
    return c;
  }

  // Reads until `until` is in what arrived, the stream ends or 20 s pass.
  static std::string read_until(int c, const std::string &until) {
    std::string got;
    char buf[4096];
    while (got.find(until) == std::string::npos) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 20000) != 1) break;
      ssize_t n = recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, size_t(n));
    }
    return got;
  }

  // One request on a new connection; the whole answer (the server closes).
  std::string ask(const std::string &request) {
    int c = connect_to_server();
    EXPECT_EQ(send(c, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
    std::string answer = read_until(c, "\n\n\n");  // i.e. until the end of stream
    close(c);
    return answer;
  }

  // Restores detached (we are the subreaper: the program becomes our child).
  void restore_detached() {
    std::string pidfile = tmp_.file("restored.pid");
    RunResult r = restore(image_path(), {"--detach", "--pidfile", pidfile});
    ASSERT_TRUE(r.exited && r.exit_code == 0) << r.status() << "\n" << r.err << "\nprogram stderr:\n" << log();
  }

  void expect_exit_0() {
    int st = 0;
    ASSERT_TRUE(test::wait_child_exit(pid_, &st, 60)) << "the restored server did not exit\n" << log();
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << std::hex << st << "\n" << log();
  }

  static long number_after(const std::string &text, const std::string &word) {
    size_t at = text.find(word + " ");
    return at == std::string::npos ? -1 : std::atol(text.c_str() + at + word.size() + 1);
  }

  int port_ = 0;
};

TEST_F(RestoreServers, PythonAsyncioEchoServerWithAClientMidStream) {
  ASSERT_EQ(access("/usr/bin/python3", X_OK), 0) << "python3 is in scripts/setup.sh's packages";
  ASSERT_NO_FATAL_FAILURE(start_server({"/usr/bin/python3", source("asyncio_echo.py")}));
  int c = connect_to_server();
  std::string line1 = "first line\n";
  ASSERT_EQ(send(c, line1.data(), line1.size(), 0), ssize_t(line1.size()));
  EXPECT_EQ(read_until(c, "\n"), "echo first line\n");
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  // The client sees neither end of stream nor reset while the server is gone.
  pollfd p{c, POLLIN | POLLRDHUP, 0};
  EXPECT_EQ(poll(&p, 1, 300), 0) << "the client saw revents 0x" << std::hex << p.revents;
  ASSERT_NO_FATAL_FAILURE(restore_detached());
  std::string line2 = "second line, same connection\n";
  ASSERT_EQ(send(c, line2.data(), line2.size(), MSG_NOSIGNAL), ssize_t(line2.size()));
  EXPECT_EQ(read_until(c, "\n"), "echo " + line2);
  // A new client too.
  int c2 = connect_to_server();
  ASSERT_EQ(send(c2, "new client\n", 11, 0), 11);
  EXPECT_EQ(read_until(c2, "\n"), "echo new client\n");
  close(c2);
  ASSERT_EQ(send(c, "quit\n", 5, MSG_NOSIGNAL), 5);
  EXPECT_EQ(read_until(c, "\n"), "bye\n");
  close(c);
  ASSERT_NO_FATAL_FAILURE(expect_exit_0());
}

TEST_F(RestoreServers, NodeHttpServerAndIntervalTimer) {
  ASSERT_EQ(access("/usr/bin/node", X_OK), 0) << "nodejs is in scripts/setup.sh's packages";
  ASSERT_NO_FATAL_FAILURE(start_server({"/usr/bin/node", source("http_ticks.js")}));
  std::string get = "GET / HTTP/1.0\r\n\r\n";
  long before = number_after(ask(get), "ticks");
  ASSERT_GE(before, 0);
  // Let the answered connection close on both sides before the dump.
  usleep(300 * 1000);
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_detached());
  std::string answer = ask(get);
  long after = number_after(answer, "ticks");
  EXPECT_GE(after, before) << answer << "\n" << log();
  // Asked again until it ticked (a loaded machine may take a while), not
  // once after a fixed sleep.
  long later = after;
  wait_until([&] { return (later = number_after(ask(get), "ticks")) > after; }, 30);
  EXPECT_GT(later, after) << "the setInterval timer stopped after the restore";
  EXPECT_NE(ask("GET /quit HTTP/1.0\r\n\r\n").find("bye"), std::string::npos);
  ASSERT_NO_FATAL_FAILURE(expect_exit_0());
}

TEST_F(RestoreServers, JvmWithThreadsAnsweringOverTcp) {
  ASSERT_EQ(access("/usr/bin/java", X_OK), 0) << "openjdk-17-jdk-headless is in scripts/setup.sh's packages";
  // A single-file source launch: the JVM compiles the class in memory.
  ASSERT_NO_FATAL_FAILURE(start_server({"/usr/bin/java", source("Counter.java")}, 180));
  long before = number_after(ask("count\n"), "counter");
  ASSERT_GE(before, 0);
  usleep(300 * 1000);
  ASSERT_NO_FATAL_FAILURE(dump_kill());
  ASSERT_NO_FATAL_FAILURE(restore_detached());
  std::string answer = ask("count\n");
  long after = number_after(answer, "counter");
  EXPECT_GE(after, before) << answer << "\n" << log();
  long later = after;
  wait_until([&] { return (later = number_after(ask("count\n"), "counter")) > after; }, 30);
  EXPECT_GT(later, after) << "the counting threads stopped after the restore";
  EXPECT_NE(ask("quit\n").find("bye"), std::string::npos);
  ASSERT_NO_FATAL_FAILURE(expect_exit_0());
}

}  // namespace
}  // namespace ckpt::restoretest
