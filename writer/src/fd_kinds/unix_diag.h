// One AF_UNIX socket as sock_diag netlink (NETLINK_SOCK_DIAG, UNIX_DIAG)
// describes it: type, state, name, peer, queue lengths, shutdown state.
#pragma once

#include <string>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

namespace ckpt::writer {

struct UnixDiag {
  img::u32 type = 0;          ///< SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
  img::u32 state = 0;         ///< TCP_LISTEN 10, TCP_ESTABLISHED 1, TCP_CLOSE 7...
  bool has_peer = false;      ///< UNIX_DIAG_PEER present: it has a peer pointer
  img::u64 peer_ino = 0;      ///< 0 when that peer is closed (orphaned)
  std::string name;           ///< sun_path as bound (path without its NUL; abstract with its leading NUL)
  img::u32 rqueue = 0;        ///< listener: connections not accepted; otherwise bytes queued
  img::u32 wqueue = 0;        ///< listener: the backlog
  img::u32 shutdown = 0;      ///< sk_shutdown
};

/// The socket with inode `ino` in our network namespace (which must be
/// the target's: sock_diag looks sockets up by inode per namespace).
img::Expected<UnixDiag> unix_diag(img::u64 ino);

}  // namespace ckpt::writer
