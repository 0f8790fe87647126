// `imgtool diff A B [--pid N] [--json]`: what changed between two
// checkpoints of one process (image_diff.cc computes it; this file is the
// command line and the text form).
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include "cli.h"
#include "image_diff.h"

namespace ckpt::tool {

using json = nlohmann::ordered_json;

static const char kHelp[] =
    "usage: imgtool diff A B [--pid N] [--json]\n"
    "\n"
    "Shows what changed in a process between checkpoint A and checkpoint B:\n"
    "memory ranges whose bytes differ (with how many bytes), mappings added,\n"
    "removed, resized or reprotected; each thread's registers and blocked\n"
    "signals; fds opened, closed, replaced, moved (file position) or with new\n"
    "flags; signal actions and pending signals; process attributes (ids, cwd,\n"
    "brk, limits); SysV IPC objects added, removed or changed. An\n"
    "incremental image is read through its parent chain.\n"
    "Exit status 0 whether or not anything differs.\n"
    "\n"
    "  --pid N   compare process N of two process-tree images (default: the root)\n"
    "  --json    print the stable machine-readable form (docs/INFO-JSON.md)\n";

namespace {

std::string s(const json &j) { return j.is_string() ? j.get<std::string>() : j.dump(); }

std::string signal_list(const json &a) {
  std::string out;
  for (const json &x : a) out += (out.empty() ? "" : ",") + s(x);
  return out.empty() ? "-" : out;
}

void line(std::string &out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void line(std::string &out, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  out += buf;
  out += '\n';
}

void render_memory(std::string &out, const json &memory) {
  if (memory.empty()) return;
  unsigned long long bytes = 0, pages = 0, runs = 0;
  for (const json &m : memory)
    if (m["change"] == "changed") bytes += m["bytes_differ"].get<unsigned long long>(), pages += m["pages"].get<unsigned long long>(), runs++;
  line(out, "memory: %llu bytes differ in %llu pages (%llu ranges)", bytes, pages, runs);
  for (const json &m : memory) {
    std::string what = s(m["change"]);
    std::string range = s(m["start"]) + "-" + s(m["end"]);
    if (what == "changed") {
      unsigned long long n = m["pages"].get<unsigned long long>();
      line(out, "  changed     %-33s %s %-24s %llu bytes differ in %llu page%s%s", range.c_str(), s(m["prot"]).c_str(),
           s(m["path"]).c_str(), m["bytes_differ"].get<unsigned long long>(), n, n == 1 ? "" : "s",
           m.contains("unknown") ? " (mapped file changed: not compared)" : "");
    } else if (what == "resized") {
      line(out, "  resized     %-33s %s %s (was %s-%s)", range.c_str(), s(m["prot"]).c_str(), s(m["path"]).c_str(),
           s(m["was"]["start"]).c_str(), s(m["was"]["end"]).c_str());
    } else if (what == "protection") {
      line(out, "  protection  %-33s %s %s (was %s)", range.c_str(), s(m["prot"]).c_str(), s(m["path"]).c_str(),
           s(m["was"]).c_str());
    } else {
      line(out, "  %-11s %-33s %s %s", what.c_str(), range.c_str(), s(m["prot"]).c_str(), s(m["path"]).c_str());
    }
  }
}

void render_threads(std::string &out, const json &threads) {
  if (threads.empty()) return;
  line(out, "threads:");
  for (const json &t : threads) {
    int tid = t["tid"].get<int>();
    if (t["change"] != "changed") {
      line(out, "  tid %-7d %s", tid, s(t["change"]).c_str());
      continue;
    }
    if (t.contains("registers"))
      for (auto &[name, v] : t["registers"].items())
        line(out, "  tid %-7d %-8s %s -> %s", tid, name.c_str(), s(v[0]).c_str(), s(v[1]).c_str());
    if (t.contains("fpu_changed")) line(out, "  tid %-7d floating-point/vector registers changed", tid);
    if (t.contains("blocked"))
      line(out, "  tid %-7d blocked +%s -%s", tid, signal_list(t["blocked"]["added"]).c_str(),
           signal_list(t["blocked"]["removed"]).c_str());
    if (t.contains("syscall"))
      line(out, "  tid %-7d in syscall %s -> %s", tid, s(t["syscall"][0]).c_str(), s(t["syscall"][1]).c_str());
    if (t.contains("name")) line(out, "  tid %-7d name %s -> %s", tid, s(t["name"][0]).c_str(), s(t["name"][1]).c_str());
  }
}

void render_fds(std::string &out, const json &fds) {
  if (fds.empty()) return;
  line(out, "fds:");
  for (const json &f : fds) {
    std::string what = s(f["change"]);
    std::string detail;
    if (what == "moved") detail = "pos " + s(f["was_pos"]) + " -> " + s(f["pos"]);
    else if (what == "flags")
      detail = "flags " + s(f["was_flags"]) + " -> " + s(f["flags"]) + (f["cloexec"] != f["was_cloexec"] ? (f["cloexec"].get<bool>() ? " +cloexec" : " -cloexec") : "");
    else if (what == "replaced") detail = "(was " + s(f["was"]["type"]) + " " + s(f["was"]["path"]) + ")";
    else detail = "pos " + s(f["pos"]);
    line(out, "  %-9s fd %-4d %-8s %s %s", what.c_str(), f["fd"].get<int>(), s(f["type"]).c_str(), s(f["path"]).c_str(),
         detail.c_str());
  }
}

void render_signals(std::string &out, const json &signals) {
  if (signals.empty()) return;
  line(out, "signals:");
  for (const json &g : signals) {
    if (g["change"] == "action")
      line(out, "  action    %-10s %s -> %s (flags %s -> %s)", s(g["signal"]).c_str(), s(g["handler"][0]).c_str(),
           s(g["handler"][1]).c_str(), s(g["flags"][0]).c_str(), s(g["flags"][1]).c_str());
    else
      line(out, "  pending   %s +%s -%s", g.contains("tid") ? ("tid " + s(g["tid"])).c_str() : "process",
           signal_list(g["added"]).c_str(), signal_list(g["removed"]).c_str());
  }
}

void render_ipc(std::string &out, const json &ipc) {
  if (ipc.empty()) return;
  line(out, "SysV IPC:");
  for (const json &o : ipc) {
    std::string detail;
    if (o.contains("fields"))
      for (auto &[name, v] : o["fields"].items()) detail += " " + name + " " + s(v[0]) + " -> " + s(v[1]);
    if (o.value("contents_differ", false)) detail += " contents differ";
    line(out, "  %-9s %s %s key %s%s", s(o["change"]).c_str(), s(o["kind"]).c_str(), s(o["id"]).c_str(),
         s(o["key"]).c_str(), detail.c_str());
  }
}

}  // namespace

std::string render_diff_text(const json &d) {
  std::string out;
  line(out, "A: %s (pid %s, checkpoint %s)", s(d["a"]["file"]).c_str(), s(d["a"]["pid"]).c_str(),
       s(d["a"]["checkpoint_id"]).c_str());
  line(out, "B: %s (pid %s, checkpoint %s)", s(d["b"]["file"]).c_str(), s(d["b"]["pid"]).c_str(),
       s(d["b"]["checkpoint_id"]).c_str());
  if (d.contains("note")) line(out, "note: %s", s(d["note"]).c_str());
  if (d["same"].get<bool>()) {
    line(out, "no differences");
    return out;
  }
  render_memory(out, d["memory"]);
  render_threads(out, d["threads"]);
  render_fds(out, d["fds"]);
  render_signals(out, d["signals"]);
  render_ipc(out, d["ipc"]);
  if (!d["process"].empty()) {
    line(out, "process:");
    for (auto &[name, v] : d["process"].items()) line(out, "  %-10s %s -> %s", name.c_str(), s(v[0]).c_str(), s(v[1]).c_str());
  }
  return out;
}

int cmd_diff(int argc, char **argv) {
  return run_command({"diff", kHelp, {{"--json", false, ""}, {"--pid", true, ""}}, 2, 2, "two images A B"}, argc, argv,
                     [](const Args &args) {
    int pid = 0;
    if (auto text = args.get("--pid")) {
      auto given = parse_pid(*text);
      if (!given) return fail("diff", "'" + *text + "' is not a pid");
      pid = *given;
    }
    auto d = diff_images(args.positional[0], args.positional[1], pid);
    if (!d) return fail("diff", d.error().message());
    std::string out = args.has("--json") ? d->dump(2) + "\n" : render_diff_text(*d);
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  });
}

}  // namespace ckpt::tool
