// The fd kind registry (libimg/fd_kinds.h, reader/src/fd_kinds/): every
// FdType has its entries, under the names `imgtool info --json` has always
// used. That a missing entry fails the build is fd_kind_registry_compile.cc.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include <ckpt/img/fd_kinds.h>

#include "fd_kinds/fd_kind.h"

using namespace ckpt;
using namespace ckpt::img;

TEST(FdKinds, EveryTypeHasItsStableName) {
  // The JSON names are an interface (gdb-scripts, users' scripts): they
  // were positional before the registry and must not move.
  const char *expected[] = {"regular", "directory", "pipe_read", "pipe_write", "fifo", "char_device",
                            "block_device", "socket", "eventfd", "signalfd", "timerfd", "epoll",
                            "inotify", "memfd", "other"};
  ASSERT_EQ(kFdTypeCount, std::size(expected));
  std::set<std::string> seen;
  for (u32 t = 0; t < kFdTypeCount; t++) {
    const FdKindInfo *k = fd_kind_info(t);
    ASSERT_NE(k, nullptr) << "type " << t;
    EXPECT_EQ(static_cast<u32>(k->type), t);
    EXPECT_STREQ(k->name, expected[t]);
    EXPECT_STREQ(fd_kind_name(t), expected[t]);
    EXPECT_TRUE(seen.insert(k->name).second) << "two kinds named " << k->name;
  }
}

TEST(FdKinds, UnknownNumbersAreNamedUnknown) {
  EXPECT_EQ(fd_kind_info(kFdTypeCount), nullptr);
  EXPECT_STREQ(fd_kind_name(kFdTypeCount), "unknown");
  EXPECT_STREQ(fd_kind_name(0xffffffffu), "unknown");
  EXPECT_EQ(reader::reader_fd_kind(kFdTypeCount), nullptr);
}

TEST(FdKinds, EveryTypeHasAReaderEntry) {
  for (u32 t = 0; t < kFdTypeCount; t++) {
    const reader::ReaderFdKind *k = reader::reader_fd_kind(t);
    ASSERT_NE(k, nullptr) << "type " << t;
    EXPECT_EQ(static_cast<u32>(k->type), t);
    EXPECT_TRUE(k->complete());
  }
}

TEST(FdKinds, OnlyPipeEndsAreSharedByPipeId) {
  for (u32 t = 0; t < kFdTypeCount; t++) {
    auto type = static_cast<FdType>(t);
    EXPECT_EQ(is_pipe_end(type), type == FdType::PipeRead || type == FdType::PipeWrite) << fd_kind_name(t);
  }
}

TEST(FdKinds, ARefusedKindIsOneLineNotASilentSkip) {
  // unsupported_state refuses these first; should a restore still get to
  // one, opening it fails naming the fd and the kind.
  FdRecord r{};
  r.fd = 7;
  r.type = static_cast<u32>(FdType::Epoll);
  CkptView v;
  reader::PipeTable pipes;
  int terminal[3] = {-1, -1, -1};
  reader::FdOpenContext c{v, pipes, terminal};
  auto fd = reader::reader_fd_kind(r.type)->open(c, r);
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().message(), "fd 7: epoll: not supported");
}
