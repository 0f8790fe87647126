// Marking AF_UNIX peers outside the image (unix_peers.h).
#include "unix_peers.h"

#include "fd_kinds/fd_kind.h"

#include <cstring>
#include <map>

namespace ckpt::writer {

namespace {

img::UnixSocketState fixed_part(const FdInfo &fi) {
  img::UnixSocketState s{};
  std::memcpy(&s, fi.state.data(), sizeof s);
  return s;
}

// A Socket state in the AF_UNIX layout (TCP/UDP ones have their own,
// whose version is above 0xff: records.h, InetSocketState).
bool is_unix_socket(const FdInfo &fi) {
  return img::FdType(fi.record.type) == img::FdType::Socket && fi.state.size() >= sizeof(img::UnixSocketState) &&
         fixed_part(fi).header.version == img::UnixSocketState::kVersion;
}

}  // namespace

void mark_unix_peers(const std::vector<ProcessCapture *> &captures) {
  std::map<img::u64, img::u64> peer_of;  // socket inode -> its peer's inode, over the image
  for (ProcessCapture *pc : captures)
    for (const FdInfo &fi : pc->fds.fds)
      if (is_unix_socket(fi)) peer_of[fi.record.ino] = fixed_part(fi).peer_ino;
  for (ProcessCapture *pc : captures)
    for (FdInfo &fi : pc->fds.fds) {
      if (!is_unix_socket(fi)) continue;
      img::UnixSocketState s = fixed_part(fi);
      if (!s.peer_ino) continue;
      auto peer = peer_of.find(s.peer_ino);
      if (peer == peer_of.end()) s.flags |= img::kUnixPeerOutside;
      // connect() of a datagram socket to a bound one makes a one-way
      // link; socketpair() (what restore makes) is always both ways.
      else if (peer->second != s.ino) s.flags |= img::kUnixOneWayPeer;
      std::memcpy(fi.state.data(), &s, sizeof s);
    }
}

}  // namespace ckpt::writer
