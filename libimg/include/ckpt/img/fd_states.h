// States of the fd kinds whose fixed part is followed by variable data
// (AF_UNIX sockets: name and queued messages; epoll: its targets), encoded
// and decoded here so that writer, reader and `info` agree on the bytes
// (docs/FORMAT.md §9.7).
#pragma once

#include <span>
#include <string>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>
#include <ckpt/img/table.h>

namespace ckpt::img {

/// A decoded UnixSocketState: the fixed fields, the name, the messages
/// (pointing into the table's data area).
struct UnixSocket {
  UnixSocketState fixed{};
  std::string name;                              ///< sun_path bytes; abstract: leading NUL
  std::vector<std::span<const u8>> messages;     ///< oldest first
};

/// The state bytes of an AF_UNIX socket (fixed's header, name_offset,
/// name_length, message_count and queued_bytes are filled in here).
std::vector<u8> unix_socket_state_bytes(UnixSocketState fixed, std::string_view name,
                                        const std::vector<std::vector<u8>> &messages);
/// Decodes r's state as an AF_UNIX socket; fails naming the fd when
/// missing, of an unknown version or malformed.
Expected<UnixSocket> unix_socket_state(const Table<FdRecord> &fds, const FdRecord &r);

/// The state bytes of an epoll fd with these targets.
std::vector<u8> epoll_state_bytes(const std::vector<EpollTarget> &targets);
/// Decodes r's state as an epoll interest list.
Expected<std::vector<EpollTarget>> epoll_state(const Table<FdRecord> &fds, const FdRecord &r);

/// "stream", "dgram", "seqpacket" (or the number) for a SOCK_* type.
std::string unix_socket_type_name(u32 sock_type);
/// A name as `info` prints it: a path, or "@name" for the abstract namespace.
std::string unix_socket_printable_name(std::string_view name);

/// CharDevice's TtyState in a few words for `imgtool info` ("" without one).
std::string tty_state_text(const Table<FdRecord> &fds, const FdRecord &r);
/// Why a terminal cannot come back, judged from the marks its writer set
/// in its TtyState (kTtyMasterOutside...), or "".
std::string tty_state_refusal(const Table<FdRecord> &fds, const FdRecord &r);

}  // namespace ckpt::img
