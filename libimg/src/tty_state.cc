// CharDevice's terminal state (TtyState, docs/FORMAT.md §9.7): what
// `imgtool info` shows of it and what of it restore refuses.
#include <ckpt/img/fd_kinds.h>
#include <ckpt/img/fd_states.h>

#include <cstdio>

namespace ckpt::img {

std::string tty_state_text(const Table<FdRecord> &fds, const FdRecord &r) {
  if (!r.state.length) return "";
  auto s = fd_state<TtyState>(fds, r);
  if (!s) return "state unreadable: " + s.error().message();
  std::string out;
  if (s->flags & kTtyMaster) out = "pty master " + std::to_string(s->index);
  else if (s->flags & kTtySlave) out = "pty slave " + std::to_string(s->index);
  else out = "terminal";
  // ICANON (0000002) and ECHO (0000010) of asm-generic/termbits.h.
  out += (s->c_lflag & 02) ? ", canonical" : ", raw";
  out += (s->c_lflag & 010) ? ", echo" : ", no echo";
  out += ", " + std::to_string(s->ws_row) + "x" + std::to_string(s->ws_col);
  if (s->flags & kTtyPacketMode) out += ", packet mode";
  if (s->flags & kTtyLocked) out += ", locked";
  if (s->flags & kTtyExclusive) out += ", exclusive";
  if (s->flags & kTtyControlling) out += ", controlling terminal";
  if (s->flags & kTtyForeground) out += " (its group in the foreground)";
  if (s->flags & kTtySlave) {
    char buf[64];
    std::snprintf(buf, sizeof buf, ", owner %u:%u mode %04o", s->owner_uid, s->owner_gid, s->file_mode);
    out += buf;
  }
  if (s->input_length || s->output_length)
    out += ", " + std::to_string(s->input_length) + " bytes queued in, " + std::to_string(s->output_length) + " out";
  return out;
}

std::string tty_state_refusal(const Table<FdRecord> &fds, const FdRecord &r) {
  if (!r.state.length) return "";
  auto s = fd_state<TtyState>(fds, r);
  if (!s) return "terminal whose state is unreadable (" + s.error().message() + ")";
  std::string path(fds.str_or_empty(r.path));
  if (s->flags & kTtyMasterOutside)
    return "pty " + path + " whose master no process of the dumped tree holds (a terminal outside it)";
  if (s->flags & kTtyPairIsControlling)
    return "pty " + path + ", the controlling terminal of the process that holds its master";
  if (s->flags & kTtyQueueUnreadable)
    return "pty master " + std::to_string(s->index) + " with bytes queued while no fd of the process holds its slave";
  return "";
}

}  // namespace ckpt::img
