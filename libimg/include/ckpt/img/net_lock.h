// The network lock of an established TCP connection (issue 13, decision
// 401): from the dump of a `--kill` dump until its restore, the packets
// the peer sends to the connection are dropped silently (nftables, in the
// network namespace of the dumped process), so that the peer's TCP
// retransmits them instead of reaching a host with no socket for them
// (which would answer with a reset) or the original socket after its
// queues were read (which would acknowledge bytes the image never saw).
// Restore removes the lock once the connection is back, out of repair
// mode; the peer's next retransmission is then accepted.
//
// One nftables table per connection, named from its addresses
// (net_lock_name), of family inet with one input chain and one rule, so
// that a restore removes exactly the locks of the connections it made,
// and a stale one (a dump or restore that never finished) can be seen
// with `nft list tables` and removed with `nft delete table inet NAME`.
// Spoken over nfnetlink directly: neither the static launcher of an
// --exec image nor a minimal host has nft or libnftables.
#pragma once

#include <string>
#include <vector>
#include <sys/types.h>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

namespace ckpt::img {

/// One end of a TCP connection as the image stores it (InetSocketState):
/// addresses in network byte order, ports in host order.
struct TcpConnectionEnds {
  u32 family = 0;  ///< AF_INET or AF_INET6 (an IPv4-mapped IPv6 address is matched as IPv4)
  u8 local_addr[16] = {};
  u16 local_port = 0;
  u8 peer_addr[16] = {};
  u16 peer_port = 0;
};

/// "ckpt_lock_<local address hex>_<local port>_<peer address hex>_<peer port>".
std::string net_lock_name(const TcpConnectionEnds &c);

/// Drops, from now on, every packet the peer sends to this end of the
/// connection (inet input hook, before conntrack). `netns_of` is a pid
/// whose network namespace gets the rule (0: the caller's). A lock that
/// was there already is replaced (the same one, once).
Status net_lock_add(const TcpConnectionEnds &c, pid_t netns_of);

/// Removes the connection's lock from the network namespace of `netns_of`
/// (0: the caller's); false when there was none (a dump that kept the
/// tree running, or an image older than the lock).
Expected<bool> net_lock_remove(const TcpConnectionEnds &c, pid_t netns_of = 0);

/// Whether the caller's network namespace holds the connection's lock.
Expected<bool> net_lock_present(const TcpConnectionEnds &c);

/// The names of every network lock in the caller's network namespace.
Expected<std::vector<std::string>> net_lock_names();

}  // namespace ckpt::img
