// `imgtool merge CHILD -o FULL`: fold an incremental chain into one
// self-contained image (FORMAT.md §12.2).
#include <cstdio>

#include <ckpt/img/chain.h>

#include "output.h"  // writer/src: ImageOutput
#include "cli.h"

namespace ckpt::tool {

static const char kHelp[] =
    "usage: imgtool merge CHILD -o FULL\n"
    "\n"
    "Folds the incremental chain that ends in CHILD (written by 'imgtool dump\n"
    "--parent') into FULL, one self-contained image without a parent: every\n"
    "page CHILD takes from its parents is copied in. Every link is checked\n"
    "first (its id and checksums). FULL keeps CHILD's image id, so increments\n"
    "dumped on top of CHILD also find FULL in its place ('-o CHILD' folds the\n"
    "chain in place). Pages are copied through, never held: merging a chain of\n"
    "any size needs little memory.\n"
    "\n"
    "  -o FULL      the output file (mode 0600; replaced only once complete;\n"
    "               '-' writes to standard output)\n";

int cmd_merge(int argc, char **argv) {
  return run_command({"merge", kHelp, {{"--output", true, "-o"}}, 1, 1, "exactly one CHILD"}, argc, argv, [](const Args &args) {
    auto output = args.get("--output");
    if (!output) return fail("merge", "-o FULL is required (see 'imgtool merge --help')");
    const std::string &file = args.positional[0];
    auto chain = img::open_chain(file, true);
    if (!chain) return fail("merge", file + ": " + chain.error().message());
    if (!(*chain)[0]->view.parent) return fail("merge", file + " is not an incremental image: there is nothing to merge");
    auto out = writer::ImageOutput::open(*output);
    if (!out) return fail("merge", out.error().message());
    img::Status s = img::write_merged(*chain, out->fd());
    if (!s) return fail("merge", file + ": " + s.error().message());
    s = out->commit(/*durable=*/true);  // as extract: merge may replace the only copy of a chain (-o CHILD)
    if (!s) return fail("merge", s.error().message());
    return 0;
  });
}

}  // namespace ckpt::tool
