// The fd kind registry, libimg's part: for every FdType its stable name
// (`imgtool info`), how processes share it, and what restore can bring
// back of it (the policy unsupported_state() applies). The writer's part
// (how a kind is recognised and captured) is writer/src/fd_kinds/, the
// reader's (preflight check, how it is reopened) reader/src/fd_kinds/;
// each is a table of exactly kFdTypeCount entries checked at compile time
// by covers_every_fd_type(), so a kind cannot lack a part
// (docs/design/adding-an-fd-kind.md).
#pragma once

#include <array>
#include <string>
#include <string_view>

#include <cstring>
#include <vector>

#include <ckpt/img/records.h>
#include <ckpt/img/table.h>

namespace ckpt::img {

/// Which id says that fds of a kind are one object, within a process and
/// across a tree's processes (reader/src/tree_plan.cc).
enum class FdSharing : u32 {
  FileId = 0,   ///< FdRecord::file_id: one open file description
  PipeId = 1,   ///< FdRecord::pipe_id: the two ends of one anonymous pipe
};

struct FdKindInfo {
  FdType type;
  const char *name;      ///< `imgtool info --json` "type"; stable
  FdSharing sharing;
  /// Why restore cannot bring fd record `r` back ("eventpoll", "pty
  /// master /dev/ptmx"), or "" when it can. `path` is r.path.
  std::string (*refusal)(const FdRecord &r, std::string_view path);
  /// The kind's own state in a few words for `imgtool info` ("count 7,
  /// semaphore"), or "" for a kind without one. `fds` holds r.
  std::string (*describe)(const Table<FdRecord> &fds, const FdRecord &r);
  /// Optional (nullptr: none): why restore cannot bring r back, judged
  /// from its state (which the writer captured, marking what it found
  /// unrestorable), or "". Asked after `refusal` said "".
  std::string (*state_refusal)(const Table<FdRecord> &fds, const FdRecord &r) = nullptr;

  constexpr bool complete() const { return name != nullptr && refusal != nullptr && describe != nullptr; }
};

/// True when `table` has one complete entry per FdType, in FdType order:
/// what every fd kind registry static_asserts.
template <typename Entry, size_t N>
constexpr bool covers_every_fd_type(const std::array<Entry, N> &table) {
  if (N != kFdTypeCount) return false;
  for (size_t i = 0; i < N; i++)
    if (static_cast<u32>(table[i].type) != i || !table[i].complete()) return false;
  return true;
}

/// The entry of a known kind, or nullptr for a number this build does not
/// know (an image written by a newer imgtool).
const FdKindInfo *fd_kind_info(u32 type);

/// "regular", "pipe_read"...; "unknown" for a number this build does not know.
const char *fd_kind_name(u32 type);

/// A kind shared by pipe_id (the two ends of an anonymous pipe), not file_id.
bool is_pipe_end(FdType t);

/// The bytes of a kind's state for FdRecord::state (TableBuilder::add_blob).
template <typename State>
std::vector<u8> fd_state_bytes(const State &state) {
  std::vector<u8> out(sizeof state);
  std::memcpy(out.data(), &state, sizeof state);
  return out;
}

/// Decodes r's state as State (which starts with an FdStateHeader and has
/// a kVersion): fails on a missing or malformed state or an unknown
/// version; copies what it knows of a longer state, zero-fills a shorter.
template <typename State>
Expected<State> fd_state(const Table<FdRecord> &fds, const FdRecord &r) {
  auto bytes = fds.blob(r.state);
  if (!bytes) return bytes.error().context("fd " + std::to_string(r.fd) + " state");
  FdStateHeader h{};
  if (bytes->size() < sizeof h) return make_error("fd %d: no %s state in the image", r.fd, fd_kind_name(r.type));
  std::memcpy(&h, bytes->data(), sizeof h);
  if (h.size != bytes->size() || h.size < sizeof h)
    return make_error("fd %d: %s state says %u bytes but has %zu", r.fd, fd_kind_name(r.type), h.size, bytes->size());
  if (h.version != State::kVersion)
    return make_error("fd %d: %s state version %u is not %u (written by a newer imgtool?)", r.fd,
                      fd_kind_name(r.type), h.version, State::kVersion);
  State s{};
  std::memcpy(&s, bytes->data(), bytes->size() < sizeof s ? bytes->size() : sizeof s);
  return s;
}

/// One inotify watch with its path (InotifyState's entries).
struct InotifyWatchEntry {
  InotifyWatch watch;
  std::string path;
};

/// The bytes of an inotify fd's state (InotifyState, then each watch and
/// its path padded to 8), watches in ascending wd.
std::vector<u8> inotify_state_bytes(const std::vector<InotifyWatchEntry> &watches);

/// Decodes r's InotifyState and its watches; fails on a malformed state.
Expected<std::vector<InotifyWatchEntry>> inotify_watches(const Table<FdRecord> &fds, const FdRecord &r);

}  // namespace ckpt::img
