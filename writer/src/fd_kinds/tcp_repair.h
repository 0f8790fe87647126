// Established TCP connections the dump put into repair mode (TCP_REPAIR on
// our pidfd_getfd copy, which is the very socket the target holds) so as
// to read their sequence numbers and queues. They stay in repair mode
// until the dump ends: with --kill, so that the dying target closes them
// silently (kernel quirk: tcp_close()/tcp_disconnect() of a socket in
// repair mode sends neither FIN nor RST, and the peer never learns that
// this end went away, as with CRIU's repair-mode close); otherwise repair
// is switched off again before the tree runs on.
#pragma once

namespace ckpt::writer {

/// One per dump: owns the sockets put into repair mode while it lives.
class TcpRepairHold {
 public:
  TcpRepairHold();
  TcpRepairHold(const TcpRepairHold &) = delete;
  TcpRepairHold &operator=(const TcpRepairHold &) = delete;
  /// Switches repair off on every socket held (the tree runs on), unless
  /// keep_for_kill() was called, and closes our copies.
  ~TcpRepairHold();
  /// The tree is about to run on: switch repair off on every socket now.
  void release();
  /// The tree is about to be killed: leave its sockets in repair mode.
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

}  // namespace ckpt::writer
