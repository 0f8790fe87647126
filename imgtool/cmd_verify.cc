#include <cstdio>

#include <ckpt/reader/validate.h>

#include "cli.h"

namespace ckpt::tool {

static const char kHelp[] =
    "usage: imgtool verify FILE [--intact]\n"
    "\n"
    "Exits 0 if FILE and its parent chain are intact (structure, every\n"
    "checksum, every note) and 'imgtool restore FILE' would start here and\n"
    "now: it runs every check restore runs before it starts anything. Else\n"
    "prints one line with the reason restore would give, and exits 1:\n"
    "  'not restorable: ...'           the image holds what restore cannot\n"
    "                                  bring back (on any machine)\n"
    "  'not restorable here now: ...'  a pid is in use, a file changed, ...\n"
    "\n"
    "  --intact   only check that the file and its chain are undamaged\n";

int cmd_verify(int argc, char **argv) {
  return run_command({"verify", kHelp, {{"--quiet", false, "-q"}, {"--intact", false, ""}}}, argc, argv, [](const Args &args) {
    const std::string &path = args.positional[0];
    reader::ValidationReport report;
    if (args.has("--intact")) {
      auto intact = reader::validate_image(path);
      if (!intact) return fail("verify", path + ": " + intact.error().message());
      report = intact.take();
    } else {
      reader::Restorability r = reader::check_restorable(path);
      if (!r.restorable()) return fail("verify", path + ": " + r.message);
      report = std::move(r.report);
    }
    if (!args.has("--quiet")) {
      std::printf("%s: ok", path.c_str());
      if (report.chain.size() > 1) std::printf(" (chain of %zu images)", report.chain.size());
      std::printf("\n");
    }
    return 0;
  });
}

}  // namespace ckpt::tool
