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

/// A decoded RecreatedFileState: owner and data extents.
struct RecreatedFile {
  RecreatedFileState fixed{};
  std::vector<DataExtent> extents;
};
/// The state bytes of a recreated file (fixed's header, extents_offset and
/// extent_count are filled in here).
std::vector<u8> recreated_file_state_bytes(RecreatedFileState fixed, const std::vector<DataExtent> &extents);
/// Decodes r's state as a recreated file; fails on a malformed state or
/// extents that are out of order or past the file's size.
Expected<RecreatedFile> recreated_file_state(const Table<FdRecord> &fds, const FdRecord &r);

/// "stream", "dgram", "seqpacket" (or the number) for a SOCK_* type.
std::string unix_socket_type_name(u32 sock_type);
/// A name as `info` prints it: a path, or "@name" for the abstract namespace.
std::string unix_socket_printable_name(std::string_view name);

/// A decoded InetSocketState: the fixed fields and views of the queued
/// bytes (pointing into the table's data area).
struct InetDatagram {
  InetDatagramHeader header{};
  std::span<const u8> bytes;
};
struct InetSocket {
  InetSocketState fixed{};
  std::span<const u8> recv_queue;      ///< TCP: received, not yet read
  std::span<const u8> send_queue;      ///< TCP: written, not yet acknowledged (its last unsent_bytes never sent)
  std::vector<InetDatagram> datagrams; ///< UDP: oldest first
};

/// True when r (a Socket) holds a TCP/UDP state (InetSocketState), false
/// for an AF_UNIX one or none.
bool is_inet_socket_state(const Table<FdRecord> &fds, const FdRecord &r);
/// The state bytes of a TCP/UDP socket (header, queues_offset and the
/// lengths are filled in here).
std::vector<u8> inet_socket_state_bytes(InetSocketState fixed, std::span<const u8> recv_queue,
                                        std::span<const u8> send_queue, const std::vector<InetDatagram> &datagrams);
/// Decodes r's state as a TCP/UDP socket; fails naming the fd when
/// missing, of an unknown version or malformed.
Expected<InetSocket> inet_socket_state(const Table<FdRecord> &fds, const FdRecord &r);
/// "127.0.0.1:8080", "[::1]:8080".
std::string inet_endpoint_text(u32 family, const u8 (&addr)[16], u16 port);
/// "ESTABLISHED", "LISTEN"..., the kernel's TCP state names.
std::string tcp_state_name(u32 state);
/// The socket in a few words for `imgtool info` and gdb's `ckpt fds`.
std::string inet_socket_text(const InetSocket &s);
/// Why restore cannot bring it back (its flags), or "".
std::string inet_socket_refusal(const InetSocketState &s);
/// CharDevice's TtyState in a few words for `imgtool info` ("" without one).
std::string tty_state_text(const Table<FdRecord> &fds, const FdRecord &r);
/// Why a terminal cannot come back, judged from the marks its writer set
/// in its TtyState (kTtyMasterOutside...), or "".
std::string tty_state_refusal(const Table<FdRecord> &fds, const FdRecord &r);

}  // namespace ckpt::img
