// The GNU build-id of an ELF file, which names the exact binary a mapping
// came from (restore and gdb both check it).
#pragma once

#include <string>
#include <vector>

#include <ckpt/img/format.h>

namespace ckpt::img {

/// The NT_GNU_BUILD_ID bytes of the ELF file at path, or empty if it has
/// none or is not ELF.
std::vector<u8> read_build_id(const std::string &path);

}  // namespace ckpt::img
