// `imgtool info`'s text form: render_text() of describe_image()'s JSON.
#include "describe.h"
#include "describe_ipc.h"
#include "describe_tree.h"
#include "names.h"

#include <cstdio>
#include <set>
#include <string>

#include <ckpt/img/format.h>

namespace ckpt::tool {

using namespace img;
using json = nlohmann::ordered_json;

static std::string str(const json &j) {
  return j.is_string() ? j.get<std::string>() : j.dump(-1, ' ', false, json::error_handler_t::replace);
}

static std::string human_bytes(u64 n) {
  char b[32];
  if (n >= (u64(1) << 30))
    std::snprintf(b, sizeof b, "%.1f GiB", n / double(u64(1) << 30));
  else if (n >= (1u << 20))
    std::snprintf(b, sizeof b, "%.1f MiB", n / double(1u << 20));
  else if (n >= 1024)
    std::snprintf(b, sizeof b, "%.1f KiB", n / 1024.0);
  else
    std::snprintf(b, sizeof b, "%llu B", (unsigned long long)n);
  return b;
}

// "yes", "no (REASON)", or "not here now (REASON)": the reason as restore
// and verify give it, less the prefix the label already says.
static std::string restorable_text(const json &info) {
  if (info["restorable"].get<bool>()) return "yes";
  std::string why = str(info["not_restorable_because"]);
  bool here_now = info.value("not_restorable_kind", "") == "here_now";
  for (std::string prefix : {"not restorable here now: ", "not restorable: "})
    if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
  return std::string(here_now ? "not here now (" : "no (") + why + ")";
}

std::string render_text(const json &info) {
  std::string out;
  auto line = [&](const std::string &s) { out += s + "\n"; };
  bool ckpt = info["kind"] == "ckpt";
  line("file:        " + str(info["file"]));
  line(std::string("kind:        ") + (ckpt ? "ckpt image, format " + str(info["format"]["major"]) + "." +
                                                 str(info["format"]["minor"])
                                           : "core file (not a ckpt image)"));
  if (ckpt && info.contains("form") && info["form"]["form"] == "exec")
    line("form:        exec form (runs as ./FILE; launcher of " + str(info["form"]["launcher_size"]) +
         " bytes at offset " + str(info["form"]["launcher_offset"]) + ")");
  line("restorable:  " + restorable_text(info));
  if (ckpt) {
    const json &id = info["identity"];
    line("image id:    " + str(id["image_id"]));
    line("created:     " + str(id["created"]) + " on " + str(id["hostname"]) + ", kernel " +
         str(id["kernel_release"]));
    line("checkpoint:  " + str(id["checkpoint_id"]) + "  (written by " + str(id["writer"]) + ")");
    line("xsave:       features " + str(id["xsave_features"]) + ", " + str(id["xsave_size"]) + " bytes");
    if (u32 unknown = info.value("unknown_notes", 0u))
      line("notes:       " + std::to_string(unknown) + (unknown == 1 ? " note" : " notes") +
           " of an unknown kind (written by a newer imgtool?)");
  }
  render_tree_text(info, out);
  for (const json &p : info["processes"]) {
    std::string head = "process " + str(p.value("pid", json(0)));
    if (p.contains("comm")) head += " (" + str(p["comm"]) + ")";
    if (p.contains("ppid"))
      head += "  ppid " + str(p["ppid"]) + "  pgid " + str(p["pgid"]) + "  sid " + str(p["sid"]);
    if (p.value("stopped", false)) head += "  [stopped]";
    line("");
    line(head);
    if (p.contains("exe")) {
      char umask[16];
      std::snprintf(umask, sizeof umask, "%04o", p["umask"].get<unsigned>());
      line("  exe " + str(p["exe"]) + "  cwd " + str(p["cwd"]) + "  umask " + umask);
    }
    for (const json &t : p["threads"]) {
      std::string s = "  thread " + str(t["tid"]);
      if (t.contains("name")) s += " (" + str(t["name"]) + ")";
      if (t.contains("registers")) {
        const json &r = t["registers"];
        s += "  rip " + str(r["rip"]) + "  rsp " + str(r["rsp"]) + "  fs_base " + str(r["fs_base"]);
      }
      if (t.value("in_syscall", false)) s += "  in syscall " + str(t["syscall"]);
      if (t.contains("signal")) s += "  signal " + str(t["signal"]);
      line(s);
      if (t.contains("privileges")) {
        const json &pr = t["privileges"];
        std::string seccomp = str(pr["seccomp"]);
        if (seccomp == "filter") seccomp += " (" + str(pr["seccomp_filters"]) + " filters)";
        line("    caps eff " + str(pr["cap_effective"]) + " prm " + str(pr["cap_permitted"]) + " inh " +
             str(pr["cap_inheritable"]) + " bnd " + str(pr["cap_bounding"]) + " amb " + str(pr["cap_ambient"]) +
             "  securebits " + str(pr["securebits"]) + "  no_new_privs " +
             (pr["no_new_privs"].get<bool>() ? "1" : "0") + "  seccomp " + seccomp);
      }
    }
    if (p.contains("fds") && !p["fds"].empty()) {
      line("  files:");
      for (const json &f : p["fds"])
        line("    " + str(f["fd"]) + "  " + str(f["type"]) + "  " + str(f["path"]) + "  pos " + str(f["pos"]) +
             "  flags " + str(f["flags"]) + (f["cloexec"].get<bool>() ? "  cloexec" : "") +
             (f.contains("state") ? "  (" + str(f["state"]) + ")" : ""));
    }
    if (p.contains("signals")) {
      const json &sig = p["signals"];
      if (!sig["actions"].empty()) {
        line("  signal handlers:");
        for (const json &a : sig["actions"]) line("    " + str(a["signal"]) + "  " + str(a["handler"]));
      }
      if (!sig["pending"].empty()) line("  pending: " + str(sig["pending"]));
    }
    if (p.contains("rlimits") && !p["rlimits"].empty()) {
      std::string s = "  limits:";
      for (const json &l : p["rlimits"]) s += " " + str(l["resource"]) + "=" + str(l["cur"]) + "/" + str(l["max"]);
      line(s);
    }
    if (p.contains("timers"))
      for (const json &tm : p["timers"]) {
        std::string s = "  timer " + str(tm["kind"]);
        if (tm.contains("id"))
          s += " " + str(tm["id"]) + " (clock " + str(tm["clock"]) + ", notify " + str(tm["notify"]) + ", signal " +
               str(tm["signal"]) + ", value " + str(tm["value"]) + ")";
        s += " in " + str(tm["value_ns"]) + " ns";
        if (tm["interval_ns"].get<u64>()) s += ", every " + str(tm["interval_ns"]) + " ns";
        line(s);
      }
  }
  line("");
  u64 stored = 0, total = 0;
  for (const json &m : info["memory"]) {
    stored += m["stored_bytes"].get<u64>();
    // strtoull, not std::stoull: nothing here may throw.
    total += std::strtoull(str(m["end"]).c_str(), nullptr, 16) - std::strtoull(str(m["start"]).c_str(), nullptr, 16);
  }
  line("memory: " + std::to_string(info["memory"].size()) + " mappings, " + human_bytes(total) + ", " +
       human_bytes(stored) + " stored here");
  // Taken from an earlier process's core (§9.23): [0] private memory
  // shared copy-on-write, [1] shared memory objects ("s" in prot).
  u64 once[2] = {};
  std::set<u64> sharing[2];  // the processes taking them
  for (const json &m : info["memory"])
    if (u64 n = m.value("stored_once_bytes", u64(0))) {
      bool object = str(m["prot"]).find('s') != std::string::npos;
      once[object] += n;
      sharing[object].insert(m.value("pid", u64(0)));
    }
  const char *what[2] = {"memory shared copy-on-write since fork", "shared memory mapped by several processes"};
  for (int k = 0; k < 2; k++)
    if (once[k])
      line(std::string(what[k]) + ", stored once: " + human_bytes(once[k]) + " in " +
           std::to_string(sharing[k].size()) + (sharing[k].size() == 1 ? " process" : " processes") +
           " taken from an earlier process's core");
  json last_pid;
  bool several = info.contains("tree") && info["tree"].size() > 1;
  for (const json &m : info["memory"]) {
    if (several && m.value("pid", json()) != last_pid) {
      last_pid = m.value("pid", json());
      line("  process " + str(last_pid) + ":");
    }
    char b[256];
    std::snprintf(b, sizeof b, "  %18s-%-18s %-4s %-11s here %-10s file %-10s zero %-10s", str(m["start"]).c_str(),
                  str(m["end"]).c_str(), str(m["prot"]).c_str(), str(m["kind"]).c_str(),
                  human_bytes(m["stored_bytes"].get<u64>()).c_str(), human_bytes(m["file_bytes"].get<u64>()).c_str(),
                  human_bytes(m["zero_bytes"].get<u64>()).c_str());
    std::string s = b;
    if (m["parent_bytes"].get<u64>()) s += " parent " + human_bytes(m["parent_bytes"].get<u64>());
    line(s + " " + str(m["path"]));
  }
  if (ckpt && info.contains("stored_files") && !info["stored_files"].empty()) {
    line("");
    line("stored files (recreated by restore when gone):");
    for (const json &f : info["stored_files"])
      line("  " + str(f["mode"]) + " " + str(f["uid"]) + ":" + str(f["gid"]) + " " + human_bytes(f["size"].get<u64>()) +
           "  " + str(f["path"]));
  }
  if (ckpt) render_sysv_ipc_text(info, out);
  if (ckpt) {
    line("");
    if (info["parent"].is_null()) {
      line("parent chain: none (a full image)");
    } else {
      line("parent: " + str(info["parent"]["image_id"]) + " at " + str(info["parent"]["path_hint"]));
      if (const json &t = info["dirty_tracking"]; !t.is_null())
        line("  pages chosen: " + human_bytes(t["tracked_bytes"].get<u64>()) + " by dirty tracking (" +
             human_bytes(t["written_bytes"].get<u64>()) + " written), " + human_bytes(t["compared_bytes"].get<u64>()) +
             " compared with the parent");
      for (const json &c : info["chain"])
        line("  " + str(c["image_id"]) + "  " + str(c["path"]) + "  (" + str(c["stored_pages"]) + " pages stored, " +
             str(c["parent_pages"]) + " in its parent)");
    }
  }
  return out;
}

}  // namespace ckpt::tool
