// `imgtool diff A B`: what changed between two checkpoints of one process —
// memory ranges with the bytes that differ, each thread's registers, fds
// opened, closed and moved, signals, and process attributes. The result is
// JSON (docs/INFO-JSON.md "imgtool diff"), rendered as text by cmd_diff.cc
// and shown by the gdb command `ckpt diff`.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

namespace ckpt::tool {

/// Compares process `pid` (0: the root) of image `a` with the same process
/// of image `b`. Both must be intact ckpt images; an incremental one is read
/// through its chain.
img::Expected<nlohmann::ordered_json> diff_images(const std::string &a, const std::string &b, img::i32 pid);

/// The human form of diff_images()'s result.
std::string render_diff_text(const nlohmann::ordered_json &diff);

}  // namespace ckpt::tool
