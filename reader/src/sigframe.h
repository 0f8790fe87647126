// The signal frame a restored thread's rt_sigreturn reads: its registers
// (with the kernel's restart decision applied), signal mask, alternate
// stack and XSAVE area in this CPU's layout.
#pragma once

#include <ckpt/img/model.h>

#include "../restorer/abi.h"
#include "arg_arena.h"

namespace ckpt::reader {

/// Builds the frame for thread `tr` in the arena and points out.sigframe at it.
img::Status build_sigframe(ArgArena &arena, const img::CoreThread &ct, const img::ThreadRecord &tr, rs_thread &out);

}  // namespace ckpt::reader
