// `imgtool restore FILE --gdb [--gdb-pid N] [-- GDB-ARGS...]`: restore the
// tree with every process held in a job-control stop before its first
// instruction, then run gdb attached to the root (or process N), with the
// ckpt gdb scripts loaded and `ckpt settle` run after the attach
// (gdb-scripts/ckpt_live.py says why). imgtool stays the restored root's
// parent while gdb runs, and exits with gdb's status.
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>
#include <ckpt/reader/restore.h>

#include "cli.h"
#include "gdb_launch.h"

namespace ckpt::tool {

namespace {

// Every pid the image restores (the root first), zombies left out.
std::vector<pid_t> restored_pids(const std::string &file, std::string *problem) {
  std::vector<pid_t> pids;
  auto image = img::ImageReader::open(file);
  if (!image) {
    *problem = image.error().message();
    return pids;
  }
  auto view = img::decode_ckpt(*image);
  if (!view) {
    *problem = view.error().message();
    return pids;
  }
  if (view->tasks.records.empty()) {
    *problem = "the image holds no process";
    return pids;
  }
  pids.push_back(view->tasks.records[0].pid);
  for (const img::TreeRecord &t : view->tree.records)
    if (t.size && t.pid != pids[0]) pids.push_back(t.pid);
  return pids;
}

// A process still in a job-control stop (state T) nobody traces.
bool held_stopped(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE *f = std::fopen(path.c_str(), "r");
  if (!f) return false;
  char buf[512];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char *close_paren = std::strrchr(buf, ')');
  return close_paren && close_paren[1] == ' ' && close_paren[2] == 'T';
}

// Whether every thread of pid has `tracer` as its tracer.
bool traced_by(pid_t pid, pid_t tracer) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR *d = opendir(dir.c_str());
  if (!d) return false;
  bool all = true, any = false;
  while (dirent *e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    any = true;
    FILE *f = std::fopen((dir + "/" + e->d_name + "/status").c_str(), "r");
    char line[256];
    long tracer_pid = 0;
    while (f && std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "TracerPid: %ld", &tracer_pid) == 1) break;
    if (f) std::fclose(f);
    all = all && tracer_pid == tracer;
  }
  closedir(d);
  return any && all;
}

}  // namespace

int restore_under_gdb(int argc, char **argv) {
  int split = index_of_double_dash(argc, argv);
  auto args = parse_args("restore", split, argv, 2,
                         {{"--gdb", false, ""}, {"--gdb-pid", true, ""}, {"--lazy", false, ""},
                          {"--reopen-changed-files", false, ""}, {"--pidns", false, ""}, {"--detach", false, ""},
                          {"--pidfile", true, ""}, {"--trust-image", false, ""}, {"--help", false, "-h"}});
  if (!args) return 2;
  if (args->positional.size() != 1) return fail("restore", "expected exactly one FILE (see 'imgtool restore --help')");
  if (!args->has("--gdb")) return fail("restore", "--gdb-pid needs --gdb");
  // gdb would see the pids of the new namespace's /proc, not ours: not done.
  if (args->has("--pidns")) return fail("restore", "--gdb with --pidns is not supported yet");
  if (args->has("--detach") || args->has("--pidfile"))
    return fail("restore", "--gdb runs in the foreground: --detach and --pidfile do not apply");
  const std::string &file = args->positional[0];
  // gdb reads its commands from standard input: the image cannot come
  // through it as well.
  if (file == "-") return fail("restore", "--gdb needs an image file; standard input ('-') is gdb's");
  std::string problem;
  std::vector<pid_t> pids = restored_pids(file, &problem);
  if (pids.empty()) return fail("restore", file + ": " + problem);
  pid_t target = pids[0];
  if (auto text = args->get("--gdb-pid")) {
    char *end = nullptr;
    long n = std::strtol(text->c_str(), &end, 10);
    bool known = false;
    for (pid_t p : pids) known |= p == n;
    if (!end || *end || !known) return fail("restore", file + ": holds no live process " + *text + " (see 'imgtool info')");
    target = static_cast<pid_t>(n);
  }
  std::string script = gdb_script_path();
  if (script.empty()) return fail("restore", "cannot find the gdb script ckpt.py");

  reader::RestoreOptions opt;
  opt.image = file;
  opt.detach = true;        // we return here with the tree in place...
  opt.hold_stopped = true;  // ...and every process stopped before its first instruction
  opt.lazy = args->has("--lazy");
  opt.reopen_changed_files = args->has("--reopen-changed-files");
  opt.trust_image = args->has("--trust-image");
  std::fflush(stdout);
  auto restored = reader::restore_image(opt);
  if (!restored) return fail("restore", file + ": " + restored.error().message());

  std::vector<std::string> words = {"gdb", "-q"};
  std::string program = target == pids[0] ? recorded_program(file) : "";
  if (!program.empty() && access(program.c_str(), R_OK) == 0) words.push_back("--se=" + program);
  words.insert(words.end(), {"-p", std::to_string(target), "-ex", "source " + script, "-ex", "ckpt settle"});
  for (int i = split + 1; i < argc; i++) words.push_back(argv[i]);
  std::string self = imgtool_path();
  if (!self.empty()) setenv("CKPT_IMGTOOL", self.c_str(), 1);

  // Like a shell running a foreground job: the terminal's SIGINT and
  // SIGQUIT are gdb's to handle (it interrupts the program), not ours.
  struct sigaction ignore {}, old_int {}, old_quit {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGQUIT, &ignore, &old_quit);
  std::fflush(stderr);
  pid_t gdb = fork();
  if (gdb == 0) {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    std::vector<char *> gdb_argv;
    for (std::string &w : words) gdb_argv.push_back(w.data());
    gdb_argv.push_back(nullptr);
    execvp("gdb", gdb_argv.data());
    std::fprintf(stderr, "imgtool restore: cannot run gdb: %s\n", std::strerror(errno));
    _exit(127);
  }
  if (gdb < 0) {
    for (pid_t p : pids) kill(p, SIGKILL);
    return fail("restore", std::string("cannot start gdb: ") + std::strerror(errno));
  }
  // The other processes of a tree run on once gdb holds the target: as if
  // gdb had attached to one process of the live tree (a parent waiting for
  // a held child would otherwise never finish; docs/DECISIONS.md).
  bool others_released = pids.size() == 1;
  int status = 0;
  for (;;) {
    // Only gdb: a restored root that exits is left for whoever reaps it
    // after us (our parent's subreaper or init takes it as a zombie when we
    // exit), as when gdb detaches from a program someone else started.
    // Reaping it here raced with the program's own exit.
    pid_t r = waitpid(gdb, &status, others_released ? 0 : WNOHANG);
    if (r == gdb) break;
    if (r < 0 && errno != EINTR) break;
    if (r == 0) {
      if (traced_by(target, gdb)) {
        for (pid_t p : pids)
          if (p != target) kill(p, SIGCONT);
        others_released = true;
      } else {
        usleep(20 * 1000);
      }
    }
  }
  // gdb is gone: what it detached from runs on (gdb's detach semantics).
  for (pid_t p : pids)
    if (held_stopped(p)) kill(p, SIGCONT);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

}  // namespace ckpt::tool
