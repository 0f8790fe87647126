// TCP and UDP sockets (inet_socket.cc), the part of the Socket kind for
// AF_INET and AF_INET6.
#pragma once

#include <sys/types.h>

#include <ckpt/img/expected.h>

#include "../fds.h"

namespace ckpt::writer {

/// Fills fi.state from `sock`, our copy of pid's socket fi.record.fd (an
/// AF_INET or AF_INET6 one); leaves it empty for a protocol other than TCP
/// and UDP (refused by kind).
img::Status capture_inet_socket(pid_t pid, int sock, FdInfo &fi);

/// getsockopt of an int option of any socket, or `fallback` where it fails.
int socket_int_option(int fd, int level, int name, int fallback);

}  // namespace ckpt::writer
