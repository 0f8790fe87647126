// Compiled, not run (tests/CMakeLists.txt): the fuzz targets' checks
// (fuzz/kind_checks.h) instantiate for every note kind of CKPT_NOTE_KINDS
// (check_view) and every fd kind of CKPT_FD_TYPES (kFuzzFdKinds, held to
// covers_every_fd_type), with the project's compiler rather than only the
// fuzz build's clang.
#include "kind_checks.h"

int main() {
  ckpt::img::CkptView view;
  ckpt::fuzz::check_view(view);
  return 0;
}
