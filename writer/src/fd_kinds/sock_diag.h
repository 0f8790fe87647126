// sock_diag requests (NETLINK_SOCK_DIAG), shared by the socket kinds'
// queries: unix_diag.cc (one AF_UNIX socket) and inet_socket.cc (a TCP
// dump of one family).
#pragma once

#include <cerrno>
#include <cstring>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include <ckpt/img/netlink.h>

#include "fd_kind.h"

namespace ckpt::writer {

/// A NETLINK_SOCK_DIAG socket.
inline img::Expected<UniqueFd> sock_diag_socket() {
  UniqueFd nl(socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl.valid()) return img::make_error("socket(NETLINK_SOCK_DIAG): %s", strerror(errno));
  return nl;
}

/// Sends one SOCK_DIAG_BY_FAMILY request: NLM_F_REQUEST | `flags`, then
/// `request` (an inet_diag_req_v2, a unix_diag_req). 0, or sendto's errno.
template <typename Request>
int send_sock_diag(int fd, const Request &request, unsigned short flags) {
  struct {
    nlmsghdr h;
    Request r;
  } msg{};
  msg.h.nlmsg_len = sizeof msg;
  msg.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.h.nlmsg_flags = static_cast<unsigned short>(NLM_F_REQUEST | flags);
  msg.r = request;
  return img::send_to_kernel(fd, &msg, sizeof msg);
}

}  // namespace ckpt::writer
