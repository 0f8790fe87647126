// What the fuzz targets do with each decoded CKPT table beyond its
// references (fuzz_common.h's check_refs): every decoder a consumer calls
// on the records of each note kind, and on each fd kind's state.
//
// Both are driven by the registries:
//   - check_view() runs check_contents() on the table of every
//     CKPT_NOTE_KINDS line, so a kind added to the registry is fuzzed with
//     that one line (its references, and decode_ckpt's cross-checks). A kind
//     whose consumers decode more than the table (fd states, armed ranges,
//     SysV messages) has its check_records() overload here.
//   - kFuzzFdKinds has one entry per FdType (CKPT_FD_TYPES), checked by
//     img::covers_every_fd_type like the fd kind registries it fuzzes, so a
//     new fd kind does not build until the decoder of its state is named.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <span>
#include <string>

#include <ckpt/img/dirty_tracking_note.h>
#include <ckpt/img/fd_kinds.h>
#include <ckpt/img/fd_states.h>
#include <ckpt/img/model.h>
#include <ckpt/img/restorable.h>

#include "fuzz_common.h"

namespace ckpt::fuzz {

/// A view a decoder handed out lies inside the table's data area.
inline void check_inside(std::span<const uint8_t> view, const img::Table<img::FdRecord> &fds) {
  if (!view.empty()) CKPT_FUZZ_CHECK(within(view.data(), view.size(), fds.data.data(), fds.data.size()));
  touch(view);
}

/// A decoder's failure is one line naming something.
template <typename T>
bool decoded(const img::Expected<T> &e) {
  if (!e) CKPT_FUZZ_CHECK(!e.error().message().empty());
  return bool(e);
}

// ---- Fd kinds: the decoder of each kind's state -----------------------------

/// Kinds without a state of their own: the registry describes none.
inline void check_stateless(const img::Table<img::FdRecord> &fds, const img::FdRecord &r) {
  CKPT_FUZZ_CHECK(img::fd_kind_info(r.type)->describe(fds, r).empty());
}

/// Regular files recreated from their bytes and memfds: RecreatedFileState.
inline void check_recreated_file(const img::Table<img::FdRecord> &fds, const img::FdRecord &r) {
  if (!r.state.length) return;
  auto s = img::recreated_file_state(fds, r);
  if (!decoded(s)) return;
  CKPT_FUZZ_CHECK(s->extents.size() == s->fixed.extent_count);
  img::u64 end = 0;
  for (const img::DataExtent &e : s->extents) {
    CKPT_FUZZ_CHECK(e.offset >= end && e.length <= r.size && e.offset <= r.size - e.length);
    end = e.offset + e.length;
  }
}

/// Terminals: TtyState.
inline void check_tty(const img::Table<img::FdRecord> &fds, const img::FdRecord &r) {
  if (!r.state.length) return;
  auto s = img::fd_state<img::TtyState>(fds, r);
  if (decoded(s)) CKPT_FUZZ_CHECK(s->header.version == img::TtyState::kVersion);
  touch(img::tty_state_text(fds, r));
  touch(img::tty_state_refusal(fds, r));
}

/// Sockets: InetSocketState (TCP/UDP) or UnixSocketState (AF_UNIX).
inline void check_socket(const img::Table<img::FdRecord> &fds, const img::FdRecord &r) {
  if (!r.state.length) return;
  if (img::is_inet_socket_state(fds, r)) {
    auto s = img::inet_socket_state(fds, r);
    if (!decoded(s)) return;
    CKPT_FUZZ_CHECK(s->recv_queue.size() == s->fixed.recv_queue_length);
    CKPT_FUZZ_CHECK(s->send_queue.size() == s->fixed.send_queue_length);
    CKPT_FUZZ_CHECK(s->datagrams.size() == s->fixed.datagram_count);
    check_inside(s->recv_queue, fds);
    check_inside(s->send_queue, fds);
    for (const img::InetDatagram &d : s->datagrams) {
      CKPT_FUZZ_CHECK(d.bytes.size() == d.header.length);
      check_inside(d.bytes, fds);
    }
    touch(img::inet_socket_text(*s));
    touch(img::inet_socket_refusal(s->fixed));
    return;
  }
  auto s = img::unix_socket_state(fds, r);
  if (!decoded(s)) return;
  CKPT_FUZZ_CHECK(s->name.size() == s->fixed.name_length);
  CKPT_FUZZ_CHECK(s->messages.size() == s->fixed.message_count);
  for (std::span<const uint8_t> m : s->messages) check_inside(m, fds);
  touch(img::unix_socket_printable_name(s->name));
}

template <typename State>
void check_fixed_state(const img::Table<img::FdRecord> &fds, const img::FdRecord &r) {
  if (!r.state.length) return;
  auto s = img::fd_state<State>(fds, r);
  if (decoded(s)) CKPT_FUZZ_CHECK(s->header.version == State::kVersion);
}

inline void check_epoll(const img::Table<img::FdRecord> &fds, const img::FdRecord &r) {
  if (!r.state.length) return;
  auto targets = img::epoll_state(fds, r);
  if (!decoded(targets)) return;
  auto bytes = fds.blob(r.state);
  CKPT_FUZZ_CHECK(bool(bytes) && targets->size() * sizeof(img::EpollTarget) <= bytes->size());
}

inline void check_inotify(const img::Table<img::FdRecord> &fds, const img::FdRecord &r) {
  if (!r.state.length) return;
  auto watches = img::inotify_watches(fds, r);
  if (!decoded(watches)) return;
  for (size_t i = 1; i < watches->size(); i++) CKPT_FUZZ_CHECK((*watches)[i - 1].watch.wd < (*watches)[i].watch.wd);
  for (const img::InotifyWatchEntry &w : *watches) {
    CKPT_FUZZ_CHECK(w.path.size() == w.watch.path_length);
    touch(w.path);
  }
}

struct FuzzFdKind {
  img::FdType type;
  /// Decodes r's state as its kind's consumers do and checks what comes out.
  void (*check_state)(const img::Table<img::FdRecord> &fds, const img::FdRecord &r);
  constexpr bool complete() const { return check_state != nullptr; }
};

inline constexpr std::array<FuzzFdKind, img::kFdTypeCount> kFuzzFdKinds = {{
    {img::FdType::Regular, check_recreated_file},
    {img::FdType::Directory, check_stateless},
    {img::FdType::PipeRead, check_stateless},
    {img::FdType::PipeWrite, check_stateless},
    {img::FdType::Fifo, check_stateless},
    {img::FdType::CharDevice, check_tty},
    {img::FdType::BlockDevice, check_stateless},
    {img::FdType::Socket, check_socket},
    {img::FdType::EventFd, check_fixed_state<img::EventFdState>},
    {img::FdType::SignalFd, check_fixed_state<img::SignalFdState>},
    {img::FdType::TimerFd, check_fixed_state<img::TimerFdState>},
    {img::FdType::Epoll, check_epoll},
    {img::FdType::Inotify, check_inotify},
    {img::FdType::MemFd, check_recreated_file},
    {img::FdType::Other, check_stateless},
}};
static_assert(img::covers_every_fd_type(kFuzzFdKinds),
              "every FdType needs its state decoder in fuzz/kind_checks.h (kFuzzFdKinds)");

// ---- Note kinds: what is decoded beyond the table ---------------------------

/// Fds: every record through the libimg fd kind registry (name, refusal,
/// description, state refusal) and its kind's state decoder.
inline void check_records(const img::Table<img::FdRecord> &fds) {
  for (const img::FdRecord &r : fds.records) {
    touch(std::string_view(img::fd_kind_name(r.type)));
    const img::FdKindInfo *kind = img::fd_kind_info(r.type);
    if (!kind) continue;  // a newer writer's kind: refused by unsupported_state
    CKPT_FUZZ_CHECK(static_cast<img::u32>(kind->type) == r.type);
    std::string_view path = fds.str_or_empty(r.path);
    touch(kind->refusal(r, path));
    touch(kind->describe(fds, r));
    if (kind->state_refusal) touch(kind->state_refusal(fds, r));
    kFuzzFdKinds[r.type].check_state(fds, r);
  }
}

/// DirtyTracking: the armed ranges, whole (start, end) pairs.
inline void check_records(const img::Table<img::DirtyTrackingRecord> &t) {
  for (const img::DirtyTrackingRecord &r : t.records) {
    auto ranges = img::armed_ranges(t, r);
    auto bytes = t.blob(r.armed);
    CKPT_FUZZ_CHECK(ranges.size() == (bytes ? bytes->size() / 16 : 0));
  }
}

/// SysvIpc: a queue's messages as restore and `info` walk them.
inline void check_records(const img::Table<img::SysvIpcRecord> &t) {
  for (const img::SysvIpcRecord &r : t.records) {
    if (r.kind != static_cast<img::u32>(img::SysvIpcKind::Msg)) continue;
    auto bytes = t.blob(r.data);
    if (!bytes) continue;
    size_t at = 0;
    for (img::u32 m = 0; m < r.count && bytes->size() - at >= sizeof(img::SysvMessageHeader); m++) {
      img::SysvMessageHeader h;
      std::memcpy(&h, bytes->data() + at, sizeof h);
      at += sizeof h;
      if (h.length > bytes->size() - at) break;
      touch(bytes->subspan(at, h.length));
      at += std::min<size_t>(bytes->size() - at, (h.length + 7) & ~img::u64(7));
    }
  }
}

// Every other kind: the table and its references (check_refs) are all its
// consumers decode; cross-record rules are decode_ckpt's, which fuzz_tables
// and fuzz_image_reader run.
template <typename R>
void check_records(const img::Table<R> &) {}

/// A table: its references, then its kind's decoders.
template <typename R>
void check_contents(const img::Table<R> &t) {
  check_refs(t);
  check_records(t);
}
template <typename R>
void check_contents(const std::optional<img::Table<R>> &t) {
  if (!t) return;
  CKPT_FUZZ_CHECK(t->records.size() == 1);
  check_contents(*t);
}

/// One kind's table of a view, as many records as its NoteCount allows.
template <img::NoteCount C, typename T>
void check_kind(const T &t) {
  check_contents(t);
  if constexpr (C == img::NoteCount::One) CKPT_FUZZ_CHECK(t.records.size() == 1);
}

/// Every table of a decoded view (one line of CKPT_NOTE_KINDS each), then
/// the restore policy that reads them all.
inline void check_view(const img::CkptView &v) {
#define CKPT_FUZZ_CHECK_VIEW(name, type, R, builder, view, scope, count, ...) \
  check_kind<img::NoteCount::count>(v.view);
  CKPT_NOTE_KINDS(CKPT_FUZZ_CHECK_VIEW)
#undef CKPT_FUZZ_CHECK_VIEW
  auto unsupported = img::unsupported_state(v);
  for (const img::Unsupported &u : unsupported) CKPT_FUZZ_CHECK(!u.what.empty());
  std::string line = img::unsupported_message(unsupported);
  CKPT_FUZZ_CHECK(line.empty() == unsupported.empty());
}

}  // namespace ckpt::fuzz
