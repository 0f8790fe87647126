// What `imgtool gdb` and `imgtool restore --gdb` share: finding the gdb
// script and the image's program (implemented in cmd_gdb.cc).
#pragma once

#include <string>

namespace ckpt::tool {

/// The ckpt.py to load: next to the installed binary, else the source
/// tree's; "" if neither exists.
std::string gdb_script_path();

/// The running imgtool (/proc/self/exe), "" if unknown.
std::string imgtool_path();

/// The executable the image records for its root process; "" if none or
/// the image cannot be read.
std::string recorded_program(const std::string &image);

/// `imgtool restore FILE --gdb ...` (cmd_restore_gdb.cc).
int restore_under_gdb(int argc, char **argv);

}  // namespace ckpt::tool
