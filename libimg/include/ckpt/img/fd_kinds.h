// The fd kind registry, libimg's part: for every FdType its stable name
// (`imgtool info`), how processes share it, and what restore can bring
// back of it (the policy unsupported_state() applies). The writer's part
// (how a kind is recognised and captured) is writer/src/fd_kinds/, the
// reader's (preflight check, how it is reopened) reader/src/fd_kinds/;
// each is a table of exactly kFdTypeCount entries checked at compile time
// by covers_every_fd_type(), so a kind cannot lack a part (docs/DESIGN.md).
#pragma once

#include <array>
#include <string>
#include <string_view>

#include <ckpt/img/records.h>

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

  constexpr bool complete() const { return name != nullptr && refusal != nullptr; }
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

}  // namespace ckpt::img
