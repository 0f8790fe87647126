// Netlink messages to and from the kernel, shared by the network lock
// (net_lock.cc, nfnetlink) and the writer's sock_diag queries.
#pragma once

#include <cerrno>
#include <cstddef>
#include <linux/netlink.h>
#include <sys/socket.h>

namespace ckpt::img {

/// Sends one buffer of netlink messages to the kernel (pid 0): 0, or the
/// errno of sendto().
inline int send_to_kernel(int fd, const void *bytes, size_t size) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, bytes, size, 0, reinterpret_cast<const sockaddr *>(&kernel), sizeof kernel) < 0) return errno;
  return 0;
}

/// NLMSG_OK for a size_t length: a whole header and the whole message
/// within `left` (the macro compares an int length with the u32
/// nlmsg_len: -Wsign-compare).
inline bool nlmsg_ok(const nlmsghdr *h, size_t left) {
  return left >= sizeof(nlmsghdr) && h->nlmsg_len >= sizeof(nlmsghdr) && h->nlmsg_len <= left;
}

/// NLMSG_NEXT for a size_t length, which it never takes below zero.
inline nlmsghdr *nlmsg_next(nlmsghdr *h, size_t &left) {
  size_t step = NLMSG_ALIGN(h->nlmsg_len);
  left = step < left ? left - step : 0;
  return reinterpret_cast<nlmsghdr *>(reinterpret_cast<char *>(h) + step);
}

}  // namespace ckpt::img
