// imgtool: one binary, git-style subcommands.
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <unistd.h>

#include "cli.h"

using namespace ckpt::tool;

namespace {

struct Command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
};

const Command kCommands[] = {
    {"dump", cmd_dump, "checkpoint a running process into an image"},
    {"restore", cmd_restore, "bring a checkpointed process back to life"},
    {"info", cmd_info, "summarise an image or core file (--json for machine use)"},
    {"verify", cmd_verify, "check that an image is intact and restorable here"},
    {"gdb", cmd_gdb, "start gdb on an image with the ckpt gdb commands loaded"},
    {"convert", cmd_convert, "switch an image between its core and self-restoring form"},
    {"binfmt", cmd_binfmt, "run core-form images as ./IMAGE (binfmt_misc rule)"},
    {"extract", cmd_extract, "write one process of a tree image as a standalone core"},
    {"diff", cmd_diff, "show what changed in a process between two checkpoints"},
    {"merge", cmd_merge, "fold an incremental chain into one self-contained image"},
};

void usage(FILE *out) {
  std::fprintf(out, "usage: imgtool COMMAND [ARGS]\n\ncommands:\n");
  for (const Command &c : kCommands) std::fprintf(out, "  %-8s %s\n", c.name, c.summary);
  std::fprintf(out, "\n'imgtool COMMAND --help' describes each command.\n");
}

}  // namespace

static int dispatch(int argc, char **argv) {
  // No command is a usage error like an unknown option (exit 2): one line
  // on stderr, as the contract asks of every failure, naming the commands;
  // the usage itself is --help's, on stdout (DECISIONS 280).
  if (argc < 2) {
    std::string names;
    for (const Command &c : kCommands) names += std::string(names.empty() ? "" : ", ") + c.name;
    std::fprintf(stderr, "imgtool: expected a command (%s; see 'imgtool --help')\n", names.c_str());
    return 2;
  }
  std::string name = argv[1];
  if (name == "help" && argc >= 3) {
    // `imgtool help CMD` is `imgtool CMD --help`, as in git.
    for (const Command &c : kCommands) {
      if (argv[2] != std::string(c.name)) continue;
      char help[] = "--help";
      char *args[] = {argv[0], argv[2], help, nullptr};
      return c.run(3, args);
    }
    (void)fail(argv[2], "unknown command (see 'imgtool --help')");
    return 2;  // a wrong command line, as no command is
  }
  if (name == "--help" || name == "-h" || name == "help") {
    usage(stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("imgtool 0.1.0\n");
    return 0;
  }
  for (const Command &c : kCommands)
    if (name == c.name) return c.run(argc, argv);
  (void)fail(name, "unknown command (see 'imgtool --help')");
  return 2;  // a wrong command line, as no command is
}

// The command, for the out-of-memory line.
static const char *g_command = "";

// Out of memory ends imgtool with one line, wherever it happens. A
// std::bad_alloc cannot always be caught: nlohmann::json's destructor
// allocates (it flattens nested values onto a vector), and an exception
// leaving a destructor is std::terminate's abort. The handler writes
// with write(2), which needs no memory. A dump in progress leaves its
// target to the kernel, which detaches a tracer's tracees when it exits.
[[noreturn]] static void out_of_memory() {
  auto put = [](const char *s) {
    if (write(STDERR_FILENO, s, strlen(s)) < 0) _exit(1);
  };
  put("imgtool ");
  put(g_command);
  put(": out of memory\n");
  _exit(1);
}

// The libraries return errors as values; this is the last resort for
// what slips through anyway (a library bug): one line and a non-zero
// exit, never std::terminate's abort with a core dump.
int main(int argc, char **argv) {
  const std::string name = argc >= 2 ? argv[1] : "";
  g_command = argc >= 2 ? argv[1] : "";
  std::set_new_handler(out_of_memory);
  try {
    return dispatch(argc, argv);
  } catch (const std::bad_alloc &) {
    return fail(name, "out of memory");
  } catch (const std::exception &e) {
    return fail(name, std::string("internal error: ") + e.what());
  } catch (...) {
    return fail(name, "internal error: an unknown exception");
  }
}
