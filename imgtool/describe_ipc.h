// `imgtool info` for an image's SysV IPC objects (CkptNote::SysvIpc) and
// the IPC namespace they lived in.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include <ckpt/img/model.h>

namespace ckpt::tool {

/// The "ipc" object: {"namespace": "own"|"host", "objects": [...]}.
nlohmann::ordered_json describe_sysv_ipc(const img::CkptView &root);
/// The text form; nothing when the image holds no IPC object.
void render_sysv_ipc_text(const nlohmann::ordered_json &info, std::string &out);

}  // namespace ckpt::tool
