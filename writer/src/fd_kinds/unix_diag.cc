// sock_diag for one AF_UNIX socket (unix_diag.h).
#include "unix_diag.h"

#include "fd_kind.h"
#include "sock_diag.h"

#include <cerrno>
#include <cstring>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/socket.h>
#include <vector>

namespace ckpt::writer {

using img::make_error;

img::Expected<UnixDiag> unix_diag(img::u64 ino) {
  auto nl = sock_diag_socket();
  if (!nl) return nl.error();
  unix_diag_req req{};
  req.sdiag_family = AF_UNIX;
  req.udiag_states = ~0u;
  req.udiag_ino = static_cast<__u32>(ino);
  req.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN;
  // An exact lookup (no NLM_F_DUMP) checks the cookie unless it is
  // INET_DIAG_NOCOOKIE (~0, ~0): unix_diag_get_exact -> sock_diag_check_cookie.
  req.udiag_cookie[0] = req.udiag_cookie[1] = ~0u;
  if (int e = send_sock_diag(nl->get(), req, 0))
    return make_error("sock_diag request for socket:[%llu]: %s", (unsigned long long)ino, strerror(e));
  std::vector<char> buf(32768);
  ssize_t n;
  do n = recv(nl->get(), buf.data(), buf.size(), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) return make_error("sock_diag reply for socket:[%llu]: %s", (unsigned long long)ino, strerror(errno));
  auto *h = reinterpret_cast<nlmsghdr *>(buf.data());
  if (!img::nlmsg_ok(h, size_t(n))) return make_error("sock_diag reply for socket:[%llu] is truncated", (unsigned long long)ino);
  if (h->nlmsg_type == NLMSG_ERROR) {
    int e = -reinterpret_cast<nlmsgerr *>(NLMSG_DATA(h))->error;
    return make_error("sock_diag does not find socket:[%llu] (%s; is the process in another network namespace?)",
                      (unsigned long long)ino, strerror(e));
  }
  auto *m = reinterpret_cast<unix_diag_msg *>(NLMSG_DATA(h));
  UnixDiag out;
  out.type = m->udiag_type;
  out.state = m->udiag_state;
  int len = int(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
  for (auto *a = reinterpret_cast<rtattr *>(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    const char *data = static_cast<const char *>(RTA_DATA(a));
    size_t size = RTA_PAYLOAD(a);
    switch (a->rta_type) {
      case UNIX_DIAG_NAME:
        out.name.assign(data, size);
        // A path's address length counts its terminating NUL (unix_bind);
        // an abstract name is exactly its bytes, the leading NUL included.
        if (!out.name.empty() && out.name[0] != '\0') out.name = out.name.c_str();
        break;
      case UNIX_DIAG_PEER:
        out.has_peer = true;
        if (size >= 4) {
          __u32 v;
          std::memcpy(&v, data, 4);
          out.peer_ino = v;
        }
        break;
      case UNIX_DIAG_RQLEN:
        if (size >= sizeof(unix_diag_rqlen)) {
          unix_diag_rqlen q;
          std::memcpy(&q, data, sizeof q);
          out.rqueue = q.udiag_rqueue;
          out.wqueue = q.udiag_wqueue;
        }
        break;
      case UNIX_DIAG_SHUTDOWN:
        if (size >= 1) out.shutdown = static_cast<unsigned char>(data[0]);
        break;
    }
  }
  return out;
}

}  // namespace ckpt::writer
