// What make_seeds' parts share: writing seeds into the corpus directories
// of the fuzz targets (OUTDIR/<target>/), and the parts make_seeds.cc calls.
#pragma once

#include <string>
#include <vector>

#include <ckpt/img/format.h>

namespace ckpt::fuzz {

/// Writes `bytes` to OUTDIR/<target>/<name>; ends make_seeds on failure.
void emit(const char *target, const std::string &name, const std::vector<img::u8> &bytes);
/// An image seed for fuzz_image_reader and fuzz_imgtool_info, and for
/// fuzz_llvm_diff unless `llvm_too` is false (what LLVM 14 cannot read).
void emit_image(const std::string &name, const std::vector<img::u8> &bytes, bool llvm_too = true);

/// The hand-built gcore- and kernel-like cores (core_seeds.cc).
void core_seeds();

}  // namespace ckpt::fuzz
