// `imgtool gdb FILE [PROGRAM] [-- GDB-ARGS...]`: gdb on an image, with the
// project's gdb commands (gdb-scripts/ckpt.py) loaded.
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <ckpt/img/chain.h>
#include <ckpt/img/exec_form.h>
#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

#include "cli.h"
#include "gdb_launch.h"
#include "tree_process.h"

#ifndef CKPT_GDB_SCRIPT_FROM_BINDIR
#define CKPT_GDB_SCRIPT_FROM_BINDIR "../share/ckpt/gdb/ckpt.py"
#endif

namespace ckpt::tool {

static const char kHelp[] =
    "usage: imgtool gdb FILE [--pid N] [PROGRAM] [-- GDB-ARGS...]\n"
    "\n"
    "Starts gdb on the image FILE as a core file, with the ckpt gdb commands\n"
    "loaded: 'info checkpoint', 'ckpt fds', 'ckpt signals', 'ckpt maps',\n"
    "'ckpt tree', 'ckpt refresh' and the variable $ckpt_image_id ('help ckpt').\n"
    "\n"
    "PROGRAM defaults to the executable the image records for its process; if\n"
    "that file no longer exists, gdb starts without it (and says so). Words\n"
    "after '--' are passed to gdb, after this command's own, for example:\n"
    "\n"
    "  imgtool gdb app.ckpt -- -batch -ex 'ckpt fds' -ex bt\n"
    "\n"
    "The commands ask this imgtool (exported as CKPT_IMGTOOL) for the data.\n"
    "\n"
    "  --pid N   open process N of a process-tree image (default: the root).\n"
    "            Its core is copied to an unnamed temporary file that gdb\n"
    "            reads through /proc and that vanishes when gdb exits\n"
    "            (docs/GDB.md).\n";

static bool exists(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

static std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

static std::string dir_of(const std::string &path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// The installed script next to the installed binary first, then (in a build
// tree) the source tree's copy.
static std::string find_script() {
  std::string exe = self_exe();
  if (!exe.empty()) {
    std::string installed = dir_of(exe) + "/" + CKPT_GDB_SCRIPT_FROM_BINDIR;
    char real[PATH_MAX];
    if (exists(installed)) return realpath(installed.c_str(), real) ? std::string(real) : installed;
  }
#ifdef CKPT_GDB_SCRIPT_SOURCE
  if (exists(CKPT_GDB_SCRIPT_SOURCE)) return CKPT_GDB_SCRIPT_SOURCE;
#endif
  return "";
}

struct ImageFacts {
  std::string program;   // recorded executable, "" if none known
  std::string problem;   // why the image could not be read, "" if it could
  bool ckpt = false;
  bool incremental = false;
  bool exec_form = false;  // gdb opens only the core form (FORMAT.md §12.3)
};

// What imgtool gdb needs from the image: the executable and whether some
// memory lives in a parent image. Reads the notes only (no checksums): the
// gdb commands report damage themselves.
static ImageFacts read_facts(const std::string &file) {
  ImageFacts facts;
  auto image = img::ImageReader::open(file);
  if (!image) {
    facts.problem = image.error().message();
    return facts;
  }
  facts.exec_form = image->exec_form().has_value();
  if (image->has_ckpt_marker() && image->find_ckpt(img::CkptNote::Identity)) {
    facts.ckpt = true;
    auto view = img::decode_ckpt(*image);
    if (!view) {
      facts.problem = view.error().message();
      return facts;
    }
    facts.incremental = view->identity.flags & img::kIdentityIncremental;
    const img::TaskRecord *task = nullptr;
    for (const img::TaskRecord &t : view->tasks.records)
      if (!task || t.pid == static_cast<img::i32>(view->identity.root_pid)) task = &t;
    if (task) facts.program = std::string(view->tasks.str_or_empty(task->exe));
    return facts;
  }
  // A plain core: the NT_FILE mapping that holds the entry point (AT_ENTRY).
  auto core = img::decode_core(*image);
  if (!core) {
    facts.problem = core.error().message();
    return facts;
  }
  for (size_t i = 0; i + 1 < core->auxv.size(); i += 2) {
    if (core->auxv[i] != 9 /* AT_ENTRY */) continue;
    for (const img::FileMapping &f : core->files)
      if (core->auxv[i + 1] >= f.start && core->auxv[i + 1] < f.end) facts.program = f.path;
  }
  return facts;
}

std::string gdb_script_path() { return find_script(); }
std::string imgtool_path() { return self_exe(); }
std::string recorded_program(const std::string &image) { return read_facts(image).program; }

int cmd_gdb(int argc, char **argv) {
  // Everything after the first "--" belongs to gdb.
  int split = index_of_double_dash(argc, argv);
  auto parsed = parse_command("gdb", split, argv,
                              {{"--pid", true, ""}}, kHelp);
  if (auto *code = std::get_if<int>(&parsed)) return *code;
  const Args &args = std::get<Args>(parsed);
  if (args.positional.empty() || args.positional.size() > 2)
    return fail("gdb", "expected FILE and at most one PROGRAM (see 'imgtool gdb --help')");
  const std::string &file = args.positional[0];
  int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("gdb", file + ": " + std::strerror(errno));
  close(fd);
  std::string core = file;
  if (auto pid_text = args.get("--pid")) {
    auto pid = parse_pid(*pid_text);
    if (!pid) return fail("gdb", "'" + *pid_text + "' is not a pid");
    // An incremental tree: each process follows its own links (merged first).
    auto source = merged_if_incremental(file);
    if (!source) return fail("gdb", file + ": " + source.error().message());
    auto record = find_embedded_process(source->path(), *pid, true);
    if (!record) return fail("gdb", file + ": " + record.error().message());
    if (record->size) {
      // The kernel cannot hand gdb a byte range of a file, so the process's
      // core is copied into an unnamed temporary file (O_TMPFILE) that stays
      // open across exec (no O_CLOEXEC): gdb and the commands' imgtool open
      // it as /proc/PID/fd/N, and it is gone once gdb exits.
      const char *tmpdir = getenv("TMPDIR");
      std::string dir = tmpdir && *tmpdir ? tmpdir : "/tmp";
      int tmp = open(dir.c_str(), O_TMPFILE | O_RDWR, 0600);
      if (tmp < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        // A file system without O_TMPFILE: a named file, unlinked at once.
        std::string name = dir + "/.imgtool-gdb-XXXXXX";
        tmp = mkstemp(name.data());
        if (tmp >= 0) unlink(name.c_str());
      }
      if (tmp < 0) return fail("gdb", "cannot create a temporary file in " + dir + ": " + std::strerror(errno));
      img::Status s = copy_embedded_core(source->path(), *record, tmp);
      if (!s) return fail("gdb", s.error().message());
      core = "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(tmp);
      // 'ckpt tree' lists the whole file's tree, not the one process.
      char real[PATH_MAX];
      setenv("CKPT_TREE_IMAGE", realpath(file.c_str(), real) ? real : file.c_str(), 1);
    }
  }

  // An incremental image: gdb gets the chain merged into an unnamed
  // temporary file (open across exec, like the --pid copy above), so it
  // reads the pages kept in the parents too; 'ckpt chain' and 'info
  // checkpoint' describe the file given (CKPT_CHAIN_IMAGE).
  if (core == file) {
    auto image = img::ImageReader::open(file);
    if (image && image->find_ckpt(img::CkptNote::Parent)) {
      auto chain = img::open_chain(file, true);
      if (!chain) return fail("gdb", file + ": " + chain.error().message());
      const char *tmpdir = getenv("TMPDIR");
      auto tmp = img::merge_to_temporary(*chain, tmpdir && *tmpdir ? tmpdir : "/tmp", false);
      if (!tmp) return fail("gdb", file + ": " + tmp.error().message());
      core = "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(*tmp);
      char real[PATH_MAX];
      setenv("CKPT_CHAIN_IMAGE", realpath(file.c_str(), real) ? real : file.c_str(), 1);
    }
  }

  std::string script = find_script();
  if (script.empty())
    return fail("gdb", "cannot find the gdb script ckpt.py (expected at " + dir_of(self_exe()) + "/" +
                           CKPT_GDB_SCRIPT_FROM_BINDIR + ")");

  ImageFacts facts = read_facts(core);
  std::string program;
  if (args.positional.size() == 2) {
    program = args.positional[1];
    if (!exists(program)) return fail("gdb", program + ": " + std::strerror(errno));
  } else if (!facts.problem.empty()) {
    std::fprintf(stderr, "imgtool gdb: %s: %s; starting gdb without a program\n", file.c_str(),
                 facts.problem.c_str());
  } else if (facts.program.empty()) {
    std::fprintf(stderr, "imgtool gdb: %s names no program; starting gdb without one\n", file.c_str());
  } else if (!exists(facts.program)) {
    static const std::string deleted = " (deleted)";
    const std::string &p = facts.program;
    if (p.size() > deleted.size() && p.compare(p.size() - deleted.size(), deleted.size(), deleted) == 0)
      std::fprintf(stderr, "imgtool gdb: the program %s was deleted before the checkpoint; starting gdb without it\n",
                   p.substr(0, p.size() - deleted.size()).c_str());
    else
      std::fprintf(stderr, "imgtool gdb: the program %s no longer exists; starting gdb without it\n", p.c_str());
  } else {
    program = facts.program;
  }
  if (facts.incremental)
    std::fprintf(stderr,
                 "imgtool gdb: %s is incremental: gdb reads the pages kept in its parent images as zeros\n",
                 file.c_str());

  std::string self = self_exe();
  if (!self.empty()) setenv("CKPT_IMGTOOL", self.c_str(), 1);

  // gdb will not open an ET_EXEC as a core: it gets an unnamed temporary
  // copy in the core form, by /proc/PID/fd/N of this process, which gdb
  // becomes (exec keeps the pid and the fd); the copy vanishes with gdb.
  // (An embedded core copied for --pid is in the core form already.)
  if (facts.exec_form) {
    const char *tmp = std::getenv("TMPDIR");
    auto fd = img::core_form_copy(file, tmp && *tmp ? tmp : "/tmp");
    if (!fd) return fail("gdb", file + ": core-form copy for gdb: " + fd.error().message());
    core = "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(*fd);
  }

  std::vector<std::string> words = {"gdb", "-q"};
  if (!program.empty()) words.push_back("--se=" + program);
  words.push_back("--core=" + core);
  words.push_back("-ex");
  words.push_back("source " + script);
  for (int i = split + 1; i < argc; i++) words.push_back(argv[i]);
  std::vector<char *> gdb_argv;
  for (std::string &w : words) gdb_argv.push_back(w.data());
  gdb_argv.push_back(nullptr);
  std::fflush(stderr);
  execvp("gdb", gdb_argv.data());
  int err = errno;
  if (err == ENOENT) return fail("gdb", "gdb is not installed (or not on PATH)");
  return fail("gdb", std::string("cannot run gdb: ") + std::strerror(err));
}

}  // namespace ckpt::tool
