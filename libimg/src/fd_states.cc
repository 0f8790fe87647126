// Encoding and decoding of the fd states with variable data (fd_states.h).
#include <ckpt/img/fd_states.h>

#include "state_bytes.h"

#include <ckpt/img/fd_kinds.h>

#include <cstring>
#include <utility>

namespace ckpt::img {

namespace {

using state_bytes::align8;
using state_bytes::append;

// The state's variable part; its fixed part goes to `fixed`, fields the
// writer did not write (at or past `tail_offset`, when an older writer's
// fixed part was shorter) zeroed.
template <typename State>
Expected<std::span<const u8>> with_tail(const Table<FdRecord> &fds, const FdRecord &r, u32 State::*tail_offset,
                                        State &fixed) {
  auto decoded = fd_state<State>(fds, r);
  if (!decoded) return decoded.error();
  auto bytes = fds.blob(r.state);
  if (!bytes) return bytes.error();
  u32 tail = (*decoded).*tail_offset;
  if (tail < sizeof(FdStateHeader) + sizeof(u32) || tail > bytes->size())
    return make_error("fd %d: %s state's variable part at %u lies outside its %zu bytes", r.fd, fd_kind_name(r.type),
                      tail, bytes->size());
  fixed = decoded.take();
  if (tail < sizeof fixed) std::memset(reinterpret_cast<u8 *>(&fixed) + tail, 0, sizeof fixed - tail);
  return bytes->subspan(tail);
}

// A state that is its fixed part, then `items` (an array of Item).
template <typename State, typename Item>
std::vector<u8> fixed_with_items(State fixed, u32 State::*items_offset, u32 State::*item_count,
                                 const std::vector<Item> &items) {
  fixed.header.version = State::kVersion;
  fixed.*items_offset = sizeof fixed;
  fixed.*item_count = u32(items.size());
  std::vector<u8> out(sizeof fixed);
  append(out, items.data(), items.size() * sizeof(Item));
  return state_bytes::seal(fixed, std::move(out));
}

// The items of such a state, its fixed part into `fixed`; errors name the
// state ("epoll") and its items ("targets").
template <typename Item, typename State>
Expected<std::vector<Item>> items_after(const Table<FdRecord> &fds, const FdRecord &r, u32 State::*items_offset,
                                        u32 State::*item_count, State &fixed, const char *state_name,
                                        const char *items_name) {
  std::span<const u8> tail;
  CKPT_TRY_ASSIGN(tail, with_tail(fds, r, items_offset, fixed));
  u32 n = fixed.*item_count;
  if (tail.size() / sizeof(Item) < n)
    return make_error("fd %d: %s state: %u %s run past its end", r.fd, state_name, n, items_name);
  std::vector<Item> out(n);
  if (n) std::memcpy(out.data(), tail.data(), n * sizeof(Item));  // memcpy from null is undefined even for 0 bytes
  return out;
}

}  // namespace

std::vector<u8> recreated_file_state_bytes(RecreatedFileState fixed, const std::vector<DataExtent> &extents) {
  return fixed_with_items(fixed, &RecreatedFileState::extents_offset, &RecreatedFileState::extent_count, extents);
}

Expected<RecreatedFile> recreated_file_state(const Table<FdRecord> &fds, const FdRecord &r) {
  RecreatedFile out;
  CKPT_TRY_ASSIGN(out.extents, items_after<DataExtent>(fds, r, &RecreatedFileState::extents_offset,
                                                       &RecreatedFileState::extent_count, out.fixed, "file",
                                                       "data extents"));
  u64 end = 0;
  for (const DataExtent &e : out.extents) {
    if (e.offset < end || e.length > r.size || e.offset > r.size - e.length)
      return make_error("fd %d: file state: data extent at %llu (+%llu) is out of order or past the file's %llu bytes",
                        r.fd, (unsigned long long)e.offset, (unsigned long long)e.length, (unsigned long long)r.size);
    end = e.offset + e.length;
  }
  return out;
}

std::vector<u8> unix_socket_state_bytes(UnixSocketState fixed, std::string_view name,
                                        const std::vector<std::vector<u8>> &messages) {
  fixed.header.version = UnixSocketState::kVersion;
  fixed.name_offset = sizeof fixed;
  fixed.name_length = u32(name.size());
  fixed.message_count = u32(messages.size());
  fixed.queued_bytes = 0;
  for (const auto &m : messages) fixed.queued_bytes += m.size();
  std::vector<u8> out(sizeof fixed);
  append(out, name.data(), name.size());
  for (const auto &m : messages) {
    UnixMessageHeader h{u32(m.size()), 0};
    out.insert(out.end(), reinterpret_cast<const u8 *>(&h), reinterpret_cast<const u8 *>(&h) + sizeof h);
    append(out, m.data(), m.size());
  }
  return state_bytes::seal(fixed, std::move(out));
}

Expected<UnixSocket> unix_socket_state(const Table<FdRecord> &fds, const FdRecord &r) {
  UnixSocket out;
  std::span<const u8> tail;
  CKPT_TRY_ASSIGN(tail, with_tail(fds, r, &UnixSocketState::name_offset, out.fixed));
  auto bad = [&](const char *what) {
    return make_error("fd %d: AF_UNIX socket state: %s runs past its end", r.fd, what);
  };
  if (out.fixed.name_length > tail.size()) return bad("the name");
  out.name.assign(reinterpret_cast<const char *>(tail.data()), out.fixed.name_length);
  size_t at = align8(out.fixed.name_length);
  for (u32 i = 0; i < out.fixed.message_count; i++) {
    UnixMessageHeader h{};
    if (at + sizeof h > tail.size()) return bad("a message header");
    std::memcpy(&h, tail.data() + at, sizeof h);
    at += sizeof h;
    if (h.length > tail.size() - at) return bad("a message");
    out.messages.push_back(tail.subspan(at, h.length));
    at = align8(at + h.length);
  }
  return out;
}

std::vector<u8> epoll_state_bytes(const std::vector<EpollTarget> &targets) {
  return fixed_with_items(EpollState{}, &EpollState::targets_offset, &EpollState::target_count, targets);
}

Expected<std::vector<EpollTarget>> epoll_state(const Table<FdRecord> &fds, const FdRecord &r) {
  EpollState fixed{};
  return items_after<EpollTarget>(fds, r, &EpollState::targets_offset, &EpollState::target_count, fixed, "epoll",
                                  "targets");
}

std::string unix_socket_type_name(u32 sock_type) {
  switch (sock_type) {
    case 1: return "stream";
    case 2: return "dgram";
    case 5: return "seqpacket";
    default: return "type " + std::to_string(sock_type);
  }
}

std::string unix_socket_printable_name(std::string_view name) {
  if (!name.empty() && name[0] == '\0') return "@" + std::string(name.substr(1));
  return std::string(name);
}

}  // namespace ckpt::img
