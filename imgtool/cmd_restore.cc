#include <cstdio>
#include <string>

#include <ckpt/reader/restore.h>

#include "cli.h"
#include "gdb_launch.h"
#include "restore_help.h"

namespace ckpt::tool {

static const char kHelp[] =
    "usage: imgtool restore FILE|- [--detach [--pidfile F]] [--lazy] [--pidns] [--leave-stopped]\n"
    "                              [--reopen-changed-files] [--trust-image]\n"
    "       imgtool restore FILE --gdb [--gdb-pid N] [--lazy] [-- GDB-ARGS...]\n"
    "\n"
    "Brings the checkpointed process back with its original pid and tids.\n"
    "FILE '-' reads the image from standard input (a pipe or socket:\n"
    "'imgtool dump --pid P -o - --kill | ssh HOST imgtool restore -'); it is\n"
    "held in memory, checked whole before anything starts, and freed once\n"
    "the processes have their memory back.\n"
    CKPT_RESTORE_FOREGROUND_HELP
    "\n"
    CKPT_RESTORE_OPTIONS_HELP
    "  --leave-stopped\n"
    "                 leave every restored process stopped (as by SIGSTOP)\n"
    "                 before its first instruction: continue it with\n"
    "                 'kill -CONT', or attach a debugger (gdb's 'ckpt\n"
    "                 restore-here' uses this)\n"
    "  --trust-image  restore FILE even though another user could have\n"
    "                 written it (it, or a folder on its path, is theirs or\n"
    "                 writable by others) and it would run with more than\n"
    "                 that user holds: other ids, capabilities, securebits\n"
    "                 or a setuid binary (docs/SECURITY.md)\n"
    "\n"
    "  --gdb          restore every process stopped before its first\n"
    "                 instruction and run gdb attached to the root (see\n"
    "                 docs/GDB.md); the exit status is gdb's\n"
    "  --gdb-pid N    with --gdb: attach to process N of a tree instead\n"
    "\n"
    "Files the image stores (dump --store-tmpfs-files) that are gone are\n"
    "recreated with their bytes, mode, owner and mtime.\n";

int cmd_restore(int argc, char **argv) {
  for (int i = 2; i < argc && std::string(argv[i]) != "--"; i++)
    if (std::string(argv[i]) == "--gdb" || std::string(argv[i]) == "--gdb-pid") return restore_under_gdb(argc, argv);
  auto parsed = parse_command("restore", argc, argv,
                              {{"--detach", false, ""}, {"--pidfile", true, ""}, {"--lazy", false, ""},
                               {"--reopen-changed-files", false, ""}, {"--pidns", false, ""}, {"--leave-stopped", false, ""},
                               {"--trust-image", false, ""}}, kHelp);
  if (auto *code = std::get_if<int>(&parsed)) return *code;
  const Args &args = std::get<Args>(parsed);
  if (args.positional.size() != 1)
    return fail("restore", "expected exactly one FILE, or '-' for standard input (see 'imgtool restore --help')");
  reader::RestoreOptions opt;
  opt.image = args.positional[0];
  opt.detach = args.has("--detach");
  opt.lazy = args.has("--lazy");
  opt.pidns = args.has("--pidns");
  opt.reopen_changed_files = args.has("--reopen-changed-files");
  opt.hold_stopped = args.has("--leave-stopped");
  opt.trust_image = args.has("--trust-image");
  if (auto p = args.get("--pidfile")) opt.pidfile = *p;
  std::fflush(stdout);
  auto status = reader::restore_image(opt);
  std::string source = opt.image == "-" ? "standard input" : opt.image;
  if (!status) return fail("restore", source + ": " + status.error().message());
  return *status;
}

}  // namespace ckpt::tool
