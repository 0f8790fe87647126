// `imgtool extract FILE --pid N -o CORE`: process N of a tree image as a
// standalone core (the embedded core, byte for byte: FORMAT.md §12.1; the
// root rewritten without the other processes, DECISIONS 278).
#include <cstdio>
#include <cstdlib>

#include "output.h"  // writer/src: ImageOutput
#include "cli.h"
#include "tree_process.h"

namespace ckpt::tool {

static const char kHelp[] =
    "usage: imgtool extract FILE --pid N -o CORE\n"
    "\n"
    "Writes process N of the process-tree image FILE as a standalone core file\n"
    "CORE (mode 0600; '-o -' writes to standard output) that gdb, eu-stack and\n"
    "readelf open like any core, and that is itself a single-process ckpt\n"
    "image. The root is written the same way: its own notes and memory,\n"
    "without the other processes.\n"
    "\n"
    "  --pid N      the process, as 'imgtool info FILE' lists it\n"
    "  -o CORE      the output file (replaced only once complete)\n";

int cmd_extract(int argc, char **argv) {
  return run_command({"extract", kHelp, {{"--pid", true, ""}, {"--output", true, "-o"}}}, argc, argv, [](const Args &args) {
    auto pid_text = args.get("--pid");
    auto output = args.get("--output");
    if (!pid_text) return fail("extract", "--pid N is required (see 'imgtool extract --help')");
    if (!output) return fail("extract", "-o CORE is required (see 'imgtool extract --help')");
    auto pid = parse_pid(*pid_text);
    if (!pid) return fail("extract", "'" + *pid_text + "' is not a pid");
    const std::string &file = args.positional[0];
    // An incremental tree: each process follows its own links (merged first).
    auto source = merged_if_incremental(file);
    if (!source) return fail("extract", file + ": " + source.error().message());
    auto record = find_embedded_process(source->path(), *pid, /*root_ok=*/true);
    if (!record) return fail("extract", file + ": " + record.error().message());
    auto out = writer::ImageOutput::open(*output);
    if (!out) return fail("extract", out.error().message());
    // The root (size 0: "the file itself") is rewritten without the tree.
    img::Status s = record->size ? copy_embedded_core(source->path(), *record, out->fd())
                                 : write_root_alone(source->path(), out->fd());
    if (!s) return fail("extract", s.error().message());
    s = out->commit(/*durable=*/true);  // as before: extract is no speed path
    if (!s) return fail("extract", s.error().message());
    return 0;
  });
}

}  // namespace ckpt::tool
