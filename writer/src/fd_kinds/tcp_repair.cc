// Sockets held in TCP repair mode during a dump (tcp_repair.h).
#include "tcp_repair.h"

#include <cstdio>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace ckpt::writer {

namespace {

struct Held {
  int sock;
  bool reuseaddr;
};

struct Locked {
  pid_t netns_of;
  img::TcpConnectionEnds ends;
};

struct Holding {
  bool lock_network;
  std::vector<Held> held;
  std::vector<Locked> locked;
};

// The current dump's sockets (a dump runs on one thread; libckpt's
// self-checkpoint dumps one process at a time too).
Holding *current = nullptr;

void repair_off(const Held &h) {
  // Without a window probe: the connection carries on as if nothing
  // happened (the probe would be harmless, but is not needed).
  int off = TCP_REPAIR_OFF_NO_WP;
  setsockopt(h.sock, IPPROTO_TCP, TCP_REPAIR, &off, sizeof off);
  int reuse = h.reuseaddr ? 1 : 0;
  setsockopt(h.sock, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
}

}  // namespace

TcpRepairHold::TcpRepairHold(bool lock_network) { current = new Holding{lock_network, {}, {}}; }

void TcpRepairHold::release() {
  if (released_ || !current) return;
  released_ = true;
  for (const Held &h : current->held) repair_off(h);
}

TcpRepairHold::~TcpRepairHold() {
  if (!keep_) release();
  Holding *holding = std::exchange(current, nullptr);
  if (!keep_) {
    // Best effort: a lock that cannot be removed now is named, and removed
    // by hand (decision 164).
    for (const Locked &l : holding->locked)
      if (auto removed = img::net_lock_remove(l.ends, l.netns_of); !removed)
        std::fprintf(stderr, "warning: %s (remove it with: nft delete table inet %s)\n",
                     removed.error().message().c_str(), img::net_lock_name(l.ends).c_str());
  }
  for (const Held &h : holding->held) close(h.sock);
  delete holding;
}

void hold_in_repair(int sock, bool reuseaddr) {
  if (current) {
    current->held.push_back({sock, reuseaddr});
    return;
  }
  repair_off({sock, reuseaddr});
  close(sock);
}

img::Status lock_connection(pid_t pid, const img::TcpConnectionEnds &ends) {
  if (!current || !current->lock_network) return {};
  CKPT_TRY(img::net_lock_add(ends, pid));
  current->locked.push_back({pid, ends});
  return {};
}

}  // namespace ckpt::writer
