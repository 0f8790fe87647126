// Which AF_UNIX peers are in the image: decided once every process of
// the dump is captured (a socketpair's ends may be in two processes).
#pragma once

#include <vector>

#include <ckpt/img/expected.h>

#include "capture.h"

namespace ckpt::writer {

/// Marks in each captured AF_UNIX socket's state what restore cannot
/// reproduce of its connection: a peer held by no process of `captures`
/// (kUnixPeerOutside), a datagram socket connected to one that is not
/// connected back (kUnixOneWayPeer). Dump then refuses by those marks.
void mark_unix_peers(const std::vector<ProcessCapture *> &captures);

}  // namespace ckpt::writer
