// The exec-form launcher that imgtool carries (launcher/, embedded at build
// time) for `dump --exec` and `convert --to exec`.
#pragma once

#include <span>

#include <ckpt/img/format.h>

extern "C" const unsigned char ckpt_launcher_blob[];
extern "C" const unsigned char ckpt_launcher_blob_end[];

namespace ckpt::tool {

inline std::span<const img::u8> launcher_bytes() {
  return {ckpt_launcher_blob, static_cast<size_t>(ckpt_launcher_blob_end - ckpt_launcher_blob)};
}

}  // namespace ckpt::tool
