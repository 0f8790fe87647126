#include <cstdio>

#include "cli.h"
#include "describe.h"

namespace ckpt::tool {

static const char kHelp[] =
    "usage: imgtool info FILE [--json]\n"
    "\n"
    "Summarises a ckpt image or any x86-64 Linux core file: identity, each\n"
    "process and thread with its registers, the memory map with where each\n"
    "range's bytes are, files, signals, limits and the parent chain.\n"
    "\n"
    "  --json   print the stable machine-readable form (docs/INFO-JSON.md)\n";

int cmd_info(int argc, char **argv) {
  return run_command({"info", kHelp, {{"--json", false, ""}}}, argc, argv, [](const Args &args) {
    auto info = describe_image(args.positional[0]);
    if (!info) return fail("info", args.positional[0] + ": " + info.error().message());
    std::string out = args.has("--json") ? render_json(*info) : render_text(*info);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  });
}

}  // namespace ckpt::tool
