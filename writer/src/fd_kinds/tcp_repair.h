// Established TCP connections the dump put into repair mode (TCP_REPAIR on
// our pidfd_getfd copy, which is the very socket the target holds) so as
// to read their sequence numbers and queues. They stay in repair mode
// until the dump ends: with --kill, so that the dying target closes them
// silently (kernel quirk: tcp_close()/tcp_disconnect() of a socket in
// repair mode sends neither FIN nor RST, and the peer never learns that
// this end went away, as with CRIU's repair-mode close); otherwise repair
// is switched off again before the tree runs on.
//
// A --kill dump also locks each connection before reading it (net_lock.h,
// decision 164): the peer's packets are dropped until the restore removes
// the lock, so that they are retransmitted to the restored socket instead
// of being acknowledged by the original after its queues were read, or
// answered with a reset once it is gone. (Kernel quirk, measured on 6.18:
// repair mode does not stop the receive path; a socket in repair mode
// queues and acknowledges what the peer sends, so repair mode alone is no
// lock.) A dump that fails removes its
// locks; one that keeps the tree running takes none (the original goes on
// and receives everything itself).
#pragma once

#include <sys/types.h>

#include <ckpt/img/expected.h>
#include <ckpt/img/net_lock.h>

namespace ckpt::writer {

/// One per dump: owns the sockets put into repair mode while it lives.
class TcpRepairHold {
 public:
  /// `lock_network`: lock every connection held (a --kill dump).
  explicit TcpRepairHold(bool lock_network);
  TcpRepairHold(const TcpRepairHold &) = delete;
  TcpRepairHold &operator=(const TcpRepairHold &) = delete;
  /// Switches repair off on every socket held (the tree runs on) and
  /// removes the locks taken, unless keep_for_kill() was called, and
  /// closes our copies.
  ~TcpRepairHold();
  /// The tree is about to run on: switch repair off on every socket now.
  void release();
  /// The tree is about to be killed: leave its sockets in repair mode
  /// and its connections locked, for the restore to unlock.
  void keep_for_kill() { keep_ = true; }

 private:
  bool keep_ = false;
  bool released_ = false;
};

/// Keeps `sock` (our copy, now in repair mode; taken over) until the
/// current TcpRepairHold ends; without one, switches repair off at once.
/// `reuseaddr` is the socket's SO_REUSEADDR, which switching repair off
/// clears (the kernel sets sk_reuse to SK_NO_REUSE) and so is put back.
void hold_in_repair(int sock, bool reuseaddr);

/// Locks the connection (in the network namespace of `pid`) when the
/// current TcpRepairHold locks; before its queues are read.
img::Status lock_connection(pid_t pid, const img::TcpConnectionEnds &ends);

}  // namespace ckpt::writer
