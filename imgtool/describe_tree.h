// `imgtool info` for a process-tree image: the tree itself (every process
// with pid, ppid, pgid, sid, state, threads, command) and, through a
// callback, each embedded core's process described like the root's.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include <ckpt/img/model.h>

namespace ckpt::tool {

using EmbeddedProcessSink =
    std::function<void(const img::CkptView &, const img::TaskRecord &, const img::CoreView &)>;

/// The "tree" array, root first then the Tree records' order; calls `each`
/// for the process of every embedded core (zombies have none).
img::Expected<nlohmann::ordered_json> describe_tree(const img::ImageReader &image, const img::CkptView &root,
                                                   const EmbeddedProcessSink &each);
/// The text form: a table indented by depth; nothing for a single process.
void render_tree_text(const nlohmann::ordered_json &info, std::string &out);

}  // namespace ckpt::tool
