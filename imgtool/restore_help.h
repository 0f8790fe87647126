// The parts of the restore help that `imgtool restore --help` and the exec
// form's launcher (`./IMAGE --help`, launcher/main.cc) both print: the
// options they share and what the foreground restore does. Written once so
// that the two cannot drift apart (they did: --pidns). String literals, so
// each program concatenates them into its own help at compile time.
#pragma once

/// What a restore in the foreground does, after "Brings ... back" prose.
#define CKPT_RESTORE_FOREGROUND_HELP                                        \
  "In the foreground it waits for the (root) process, passes on SIGINT,\n" \
  "SIGTERM, SIGHUP, SIGQUIT and SIGWINCH, and exits with its exit status\n" \
  "(128+N for death by signal N).\n"

/// The options of both: --detach, --pidfile, --pidns, --lazy and
/// --reopen-changed-files, one "  --option  description" block each.
#define CKPT_RESTORE_OPTIONS_HELP                                             \
  "  --detach       return once the process runs\n"                          \
  "  --pidfile F    write the restored process's pid to F (with --pidns:\n"  \
  "                 its pid as seen here, outside the new namespace); F is\n" \
  "                 opened first, so a pid file that cannot be written\n"    \
  "                 fails the restore before anything runs\n"               \
  "  --pidns        restore into a new pid namespace with its own /proc,\n"  \
  "                 where the original pids are free even when this host\n" \
  "                 has reused them; inside, getpid() is the original pid\n" \
  "                 and a small init (pid 1 there) reaps orphans; when the\n" \
  "                 root exits, the namespace ends (its other processes\n"   \
  "                 are killed). Several restores of one image can run at\n" \
  "                 once.\n"                                                  \
  "  --lazy         map memory straight from the image file instead of\n"    \
  "                 reading it: pages come from the file as the process\n"   \
  "                 touches them, the rest in the background (faster for\n"  \
  "                 large images; the file must stay in place until a\n"     \
  "                 helper process has finished). It needs userfaultfd:\n"   \
  "                 root, CAP_SYS_PTRACE, read-write /dev/userfaultfd or\n"  \
  "                 vm.unprivileged_userfaultfd = 1\n"                        \
  "  --reopen-changed-files\n"                                               \
  "                 open files that were replaced or truncated since the\n"  \
  "                 dump (rotated logs) as they are now, instead of\n"       \
  "                 refusing; a position past the new end moves to the end\n"
