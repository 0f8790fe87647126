#include <cstdio>

#include <ckpt/img/exec_form.h>

#include "cli.h"
#include "launcher_bytes.h"

namespace ckpt::tool {

static const char kHelp[] =
    "usage: imgtool convert FILE --to exec|core [-o OUT]\n"
    "\n"
    "Switches an image between its two forms: 'core', the ELF core file that\n"
    "gdb, eu-stack and readelf open, and 'exec', a self-restoring executable\n"
    "that runs as ./FILE (like 'imgtool restore FILE') on a machine without\n"
    "imgtool. Only the first 128 bytes are rewritten: the launcher is appended\n"
    "going to exec and cut off going back to core; memory is never copied or\n"
    "moved, so converting takes the same time whatever the image's size.\n"
    "\n"
    "  --to exec|core   the form to write\n"
    "  -o, --output OUT write a new file instead of converting FILE in place\n"
    "                   (data is copied with copy_file_range, shared where the\n"
    "                   filesystem can)\n"
    "\n"
    "A file already in the asked form is left as it is.\n";

int cmd_convert(int argc, char **argv) {
  return run_command({"convert", kHelp, {{"--to", true, ""}, {"--output", true, "-o"}}}, argc, argv, [](const Args &args) {
    auto to = args.get("--to");
    if (!to) return fail("convert", "--to exec|core is required");
    if (*to != "exec" && *to != "core") return fail("convert", "--to takes 'exec' or 'core', not '" + *to + "'");
    std::string out = args.get("--output").value_or("");
    if (out == "-") return fail("convert", "-o - is not supported: convert writes a file");
    const std::string &file = args.positional[0];
    auto done = img::convert_image(file, out, *to == "exec" ? img::ImageForm::Exec : img::ImageForm::Core,
                                   launcher_bytes());
    if (!done) return fail("convert", file + ": " + done.error().message());
    return 0;
  });
}

}  // namespace ckpt::tool
