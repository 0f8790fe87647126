// The launcher of the exec form (docs/FORMAT.md §12.3): a static-pie build
// of the restore path that imgtool appends to an image. Run as ./FILE, the
// kernel loads only this program (the image's own segments are not
// PT_LOADs of the exec header); it opens its own file, which ImageReader
// sees in its core form, and restores it exactly as `imgtool restore FILE`.
#include <cstdio>
#include <fcntl.h>
#include <unistd.h>
#include <cstring>
#include <string>

#include <ckpt/reader/restore.h>

#include "../imgtool/restore_help.h"
#include "../reader/src/phase_times.h"

static const char kHelp[] =
    "usage: %s [--detach [--pidfile F]] [--lazy] [--pidns] [--reopen-changed-files]\n"
    "\n"
    "A self-restoring checkpoint image (imgtool dump --exec). Running it\n"
    "brings the checkpointed process (or process tree) back with its original\n"
    "pids and tids, like 'imgtool restore' of this file.\n"
    CKPT_RESTORE_FOREGROUND_HELP
    "\n"
    CKPT_RESTORE_OPTIONS_HELP
    "\n"
    "'imgtool info', 'verify' and 'gdb' read this file as they read the core\n"
    "form; 'imgtool convert FILE --to core' turns it back into one.\n";

static int fail(const char *self, const std::string &message) {
  std::fprintf(stderr, "%s: %s\n", self, message.c_str());
  return 1;
}

// A wrong command line exits 2, as imgtool's option errors do
// (DECISIONS 280); a restore that fails exits 1.
static int usage_error(const char *self, const std::string &message) {
  fail(self, message);
  return 2;
}

// True when this program runs as itself, not inside an exec-form image: the
// binfmt_misc interpreter of `imgtool binfmt install`, which the kernel
// starts as INTERPRETER IMAGE ARGS... for a core-form image run as ./IMAGE.
static bool running_as_interpreter() {
  unsigned char head[16] = {};
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool got = read(fd, head, sizeof head) == static_cast<ssize_t>(sizeof head);
  close(fd);
  return got && std::memcmp(head + 9, "CKPT", 4) != 0;
}

int main(int argc, char **argv) {
  ckpt::reader::start_phase_clock();
  const char *self = argc > 0 && argv[0] ? argv[0] : "ckpt-image";
  ckpt::reader::RestoreOptions opt;
  // The kernel's name for the file being run: the same file from any
  // directory, and in the restore's child processes too (same executable).
  opt.image = "/proc/self/exe";
  int first = 1;
  if (running_as_interpreter()) {
    if (argc < 2) return usage_error(self, "expected the image to restore (this is the binfmt_misc interpreter of imgtool)");
    // binfmt_misc passes the path as it was run; the restore's children
    // have this interpreter as their executable, so the path is what names
    // the image for them too.
    self = argv[1];
    opt.image = argv[1];
    first = 2;
  }
  for (int i = first; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::printf(kHelp, self);
      return 0;
    } else if (a == "--detach") {
      opt.detach = true;
    } else if (a == "--lazy") {
      opt.lazy = true;
    } else if (a == "--pidns") {
      opt.pidns = true;
    } else if (a == "--reopen-changed-files") {
      opt.reopen_changed_files = true;
    } else if (a == "--pidfile" || a.rfind("--pidfile=", 0) == 0) {
      if (a == "--pidfile") {
        if (i + 1 >= argc) return usage_error(self, "--pidfile needs a file name");
        opt.pidfile = argv[++i];
      } else {
        opt.pidfile = a.substr(std::strlen("--pidfile="));
      }
    } else {
      return usage_error(self, "unexpected argument '" + a + "' (see '" + std::string(self) + " --help')");
    }
  }
  std::fflush(stdout);
  auto status = ckpt::reader::restore_image(opt);
  if (!status) return fail(self, "restore: " + status.error().message());
  return *status;
}
