#include "describe_tree.h"

#include <csignal>
#include <cstring>
#include <map>
#include <set>
#include <sys/wait.h>

namespace ckpt::tool {

using namespace img;
using json = nlohmann::ordered_json;

static json task_entry(const CkptView &v, const TaskRecord &t) {
  return json{{"pid", t.pid},
              {"ppid", t.ppid},
              {"pgid", t.pgid},
              {"sid", t.sid},
              {"state", (t.flags & kTaskStopped) ? "stopped" : "running"},
              {"threads", t.thread_count},
              {"comm", std::string(v.tasks.str_or_empty(t.comm))}};
}

Expected<json> describe_tree(const ImageReader &image, const CkptView &root, const EmbeddedProcessSink &each) {
  json tree = json::array();
  for (const TaskRecord &t : root.tasks.records) tree.push_back(task_entry(root, t));
  for (const TreeRecord &r : root.tree.records) {
    json e;
    if (r.flags & kTreeZombie) {
      e = json{{"pid", r.pid},       {"ppid", r.ppid}, {"pgid", r.pgid},
               {"sid", r.sid},       {"state", "zombie"}, {"threads", 0},
               {"comm", std::string(root.tree.str_or_empty(r.comm))}};
      e["wait_status"] = r.wait_status;
      if (WIFSIGNALED(r.wait_status)) {
        const char *name = sigabbrev_np(WTERMSIG(r.wait_status));
        e["term_signal"] = name ? std::string("SIG") + name : std::to_string(WTERMSIG(r.wait_status));
      } else {
        e["exit_code"] = WEXITSTATUS(r.wait_status);
      }
    } else {
      auto core = image.embedded(r);
      if (!core) return core.error();
      auto cv = decode_core(*core);
      if (!cv) return cv.error().context("process " + std::to_string(r.pid));
      auto v = decode_ckpt(*core);
      if (!v) return v.error().context("process " + std::to_string(r.pid));
      if (v->tasks.records.size() != 1 || v->tasks.records[0].pid != r.pid)
        return make_error("process %d: its embedded core describes another process", r.pid);
      e = task_entry(*v, v->tasks.records[0]);
      each(*v, v->tasks.records[0], *cv);
    }
    e["creator_tid"] = r.creator_tid;
    e["core_offset"] = r.offset;
    e["core_size"] = r.size;
    tree.push_back(e);
  }
  return tree;
}

static std::string text(const json &j) { return j.is_string() ? j.get<std::string>() : j.dump(); }

void render_tree_text(const json &info, std::string &out) {
  if (!info.contains("tree") || info["tree"].size() < 2) return;
  const json &tree = info["tree"];
  std::set<long> pids;
  for (const json &p : tree) pids.insert(p["pid"].get<long>());
  std::map<long, std::vector<const json *>> children;  // ppid -> entries (roots under -1)
  for (const json &p : tree) {
    long ppid = p["ppid"].get<long>();
    children[pids.count(ppid) ? ppid : -1].push_back(&p);
  }
  char line[256];
  out += "\ntree: " + std::to_string(tree.size()) + " processes\n";
  std::snprintf(line, sizeof line, "  %-16s %-8s %-8s %-8s %-16s %-7s %s\n", "PID", "PPID", "PGID", "SID", "STATE",
                "THREADS", "COMMAND");
  out += line;
  std::set<long> seen;
  std::function<void(long, int)> walk = [&](long parent, int depth) {
    for (const json *p : children[parent]) {
      long pid = (*p)["pid"].get<long>();
      if (!seen.insert(pid).second) continue;
      std::string state = text((*p)["state"]);
      if (p->contains("exit_code")) state += " (exit " + text((*p)["exit_code"]) + ")";
      if (p->contains("term_signal")) state += " (" + text((*p)["term_signal"]) + ")";
      std::string indented = std::string(2 * depth, ' ') + std::to_string(pid);
      std::snprintf(line, sizeof line, "  %-16s %-8s %-8s %-8s %-16s %-7s %s\n", indented.c_str(),
                    text((*p)["ppid"]).c_str(), text((*p)["pgid"]).c_str(), text((*p)["sid"]).c_str(), state.c_str(),
                    text((*p)["threads"]).c_str(), text((*p)["comm"]).c_str());
      out += line;
      walk(pid, depth + 1);
    }
  };
  walk(-1, 0);
}

}  // namespace ckpt::tool
