#include <cstdio>

#include <ckpt/reader/validate.h>

#include "cli.h"

namespace ckpt::tool {

static const char kHelp[] =
    "usage: imgtool verify FILE\n"
    "\n"
    "Exits 0 if FILE and its parent chain are intact (structure, every\n"
    "checksum, every note) and restorable on this machine; otherwise prints\n"
    "one line saying what is wrong and where, and exits 1.\n";

int cmd_verify(int argc, char **argv) {
  auto args = parse_args("verify", argc, argv, 2, {{"--help", false, "-h"}, {"--quiet", false, "-q"}});
  if (!args) return 2;
  if (args->has("--help")) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (args->positional.size() != 1) return fail("verify", "expected exactly one FILE (see 'imgtool verify --help')");
  const std::string &path = args->positional[0];
  auto report = reader::validate_image(path);
  if (!report) return fail("verify", path + ": " + report.error().message());
  if (!args->has("--quiet")) {
    std::printf("%s: ok", path.c_str());
    if (report->chain.size() > 1) std::printf(" (chain of %zu images)", report->chain.size());
    std::printf("\n");
  }
  return 0;
}

}  // namespace ckpt::tool
