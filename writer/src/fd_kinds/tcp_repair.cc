// Sockets held in TCP repair mode during a dump (tcp_repair.h).
#include "tcp_repair.h"

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

// The current dump's sockets (a dump runs on one thread; libckpt's
// self-checkpoint dumps one process at a time too).
std::vector<Held> *current = nullptr;

void repair_off(const Held &h) {
  // Without a window probe: the connection carries on as if nothing
  // happened (the probe would be harmless, but is not needed).
  int off = TCP_REPAIR_OFF_NO_WP;
  setsockopt(h.sock, IPPROTO_TCP, TCP_REPAIR, &off, sizeof off);
  int reuse = h.reuseaddr ? 1 : 0;
  setsockopt(h.sock, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
}

}  // namespace

TcpRepairHold::TcpRepairHold() { current = new std::vector<Held>; }

void TcpRepairHold::release() {
  if (released_ || !current) return;
  released_ = true;
  for (const Held &h : *current) repair_off(h);
}

TcpRepairHold::~TcpRepairHold() {
  if (!keep_) release();
  std::vector<Held> *held = std::exchange(current, nullptr);
  for (const Held &h : *held) close(h.sock);
  delete held;
}

void hold_in_repair(int sock, bool reuseaddr) {
  if (current) {
    current->push_back({sock, reuseaddr});
    return;
  }
  repair_off({sock, reuseaddr});
  close(sock);
}

}  // namespace ckpt::writer
