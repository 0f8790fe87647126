// `imgtool binfmt install|uninstall|status`: a binfmt_misc rule that runs
// core-form images as ./IMAGE through the exec-form launcher.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <string>
#include <unistd.h>

#include "cli.h"
#include "launcher_bytes.h"

namespace ckpt::tool {

static const char kHelp[] =
    "usage: imgtool binfmt install|uninstall|status [--dir DIR]\n"
    "\n"
    "Registers (or removes, or shows) a binfmt_misc rule named 'ckpt' under\n"
    "which a core-form image runs as ./IMAGE [ARGS], restoring itself as\n"
    "'imgtool restore IMAGE' does (the exec form needs no rule). The rule\n"
    "matches the ckpt marker and ET_CORE in the ELF header, and its\n"
    "interpreter is the launcher of the exec form, opened by the kernel when\n"
    "the rule is registered (flag F), so nothing stays installed on disk.\n"
    "\n"
    "  --dir DIR   where binfmt_misc is mounted (default\n"
    "              /proc/sys/fs/binfmt_misc; since Linux 6.7 it can be mounted\n"
    "              inside a user namespace, with rules private to it)\n";

static const char kRule[] = "ckpt";

static int write_text(const std::string &path, const std::string &text, std::string &error) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    error = path + ": " + std::strerror(errno);
    return -1;
  }
  ssize_t n = write(fd, text.data(), text.size());
  int e = errno;
  close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    error = path + ": " + (n < 0 ? std::strerror(e) : "short write");
    return -1;
  }
  return 0;
}

static int install(const std::string &dir) {
  std::string rule = dir + "/" + kRule, error;
  if (access(rule.c_str(), F_OK) == 0) return fail("binfmt", "the rule " + rule + " exists already (imgtool binfmt uninstall first)");
  // The interpreter: the launcher in a temporary file, opened by the kernel
  // at registration (flag F) and unlinked right after.
  char path[] = "/tmp/ckpt-binfmt-XXXXXX";
  int fd = mkostemp(path, O_CLOEXEC);
  if (fd < 0) return fail("binfmt", std::string("temporary file: ") + std::strerror(errno));
  auto bytes = launcher_bytes();
  bool ok = write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()) && fchmod(fd, 0755) == 0;
  int e = errno;
  close(fd);
  if (!ok) {
    unlink(path);
    return fail("binfmt", std::string(path) + ": " + std::strerror(e));
  }
  // Magic at offset 9: "CKPT", format major 1, e_ident[14..15] (any), and
  // e_type ET_CORE (04 00) at 16-17: the exec form (ET_DYN) runs by itself.
  std::string reg = std::string(":") + kRule + ":M:9:CKPT\\x01\\x00\\x00\\x04\\x00:" +
                    "\\xff\\xff\\xff\\xff\\xff\\x00\\x00\\xff\\xff:" + path + ":F";
  int r = write_text(dir + "/register", reg, error);
  unlink(path);
  if (r < 0) {
    if (access((dir + "/register").c_str(), F_OK) != 0)
      return fail("binfmt", "binfmt_misc is not mounted at " + dir + " (mount -t binfmt_misc binfmt_misc " + dir + ")");
    return fail("binfmt", "registering the rule: " + error);
  }
  std::printf("installed %s: core-form ckpt images now run as ./IMAGE\n", rule.c_str());
  return 0;
}

static int uninstall(const std::string &dir) {
  std::string rule = dir + "/" + kRule, error;
  if (access(rule.c_str(), F_OK) != 0) return fail("binfmt", "no rule " + rule + " is installed");
  if (write_text(rule, "-1", error) < 0) return fail("binfmt", "removing the rule: " + error);
  std::printf("removed %s\n", rule.c_str());
  return 0;
}

static int status(const std::string &dir) {
  std::string rule = dir + "/" + kRule;
  FILE *f = std::fopen(rule.c_str(), "re");
  if (!f) {
    if (access((dir + "/register").c_str(), F_OK) != 0)
      return fail("binfmt", "binfmt_misc is not mounted at " + dir);
    std::printf("not installed\n");
    return 0;
  }
  char line[256] = {};
  bool enabled = std::fgets(line, sizeof line, f) && std::strncmp(line, "enabled", 7) == 0;
  std::fclose(f);
  std::printf("installed (%s): %s\n", enabled ? "enabled" : "disabled", rule.c_str());
  return 0;
}

int cmd_binfmt(int argc, char **argv) {
  return run_command({"binfmt", kHelp, {{"--dir", true, ""}}, 1, 1, "install, uninstall or status"}, argc, argv,
                     [](const Args &args) {
    std::string dir = args.get("--dir").value_or("/proc/sys/fs/binfmt_misc");
    const std::string &what = args.positional[0];
    if (what == "install") return install(dir);
    if (what == "uninstall") return uninstall(dir);
    if (what == "status") return status(dir);
    return fail("binfmt", "unknown action '" + what + "' (install, uninstall or status)");
  });
}

}  // namespace ckpt::tool
