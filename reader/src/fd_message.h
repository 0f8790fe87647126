// The one-byte message that carries one fd over a unix socket (SCM_RIGHTS):
// the restored process's userfaultfd to imgtool (lazy_pages.cc), and each
// userfaultfd on to the --lazy helper's guard (lazy_guard.cc).
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

namespace ckpt::reader {

struct FdMessage {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  FdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
  }
  FdMessage(const FdMessage &) = delete;
  FdMessage &operator=(const FdMessage &) = delete;
};

}  // namespace ckpt::reader
