#include "image_diff.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <optional>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/img/chain.h>
#include <ckpt/img/fd_kinds.h>
#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

#include "describe_ipc.h"
#include "image_diff_side.h"
#include "names.h"
#include "tree_process.h"

namespace ckpt::tool {

using namespace img;
using json = nlohmann::ordered_json;
using diff::Side;
using diff::with;

namespace {

const CoreThread *core_thread(const Side &s, i32 tid) {
  for (const CoreThread &t : s.core.threads)
    if (t.prstatus.pr_pid == tid) return &t;
  return nullptr;
}

const ThreadRecord *thread_record(const Side &s, i32 tid) {
  for (const ThreadRecord &t : s.view.threads.records)
    if (t.tid == tid && t.pid == s.task->pid) return &t;
  return nullptr;
}

json diff_registers(const UserRegs &x, const UserRegs &y) {
  static const char *names[] = {"r15", "r14", "r13", "r12", "rbp", "rbx", "r11",     "r10", "r9",
                                "r8",  "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs",
                                "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs"};
  static_assert(sizeof(UserRegs) == std::size(names) * sizeof(u64));
  u64 vx[std::size(names)], vy[std::size(names)];
  std::memcpy(vx, &x, sizeof vx);
  std::memcpy(vy, &y, sizeof vy);
  json regs = json::object();
  for (size_t i = 0; i < std::size(names); i++)
    if (vx[i] != vy[i]) regs[names[i]] = json::array({hex(vx[i]), hex(vy[i])});
  return regs;
}

json diff_threads(const Side &a, const Side &b) {
  json out = json::array();
  auto tids = [](const Side &s) {
    std::vector<i32> v;
    for (const ThreadRecord &t : s.view.threads.records)
      if (t.pid == s.task->pid) v.push_back(t.tid);
    std::sort(v.begin(), v.end());
    return v;
  };
  std::vector<i32> ta = tids(a), tb = tids(b), all = ta;
  all.insert(all.end(), tb.begin(), tb.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  for (i32 tid : all) {
    const ThreadRecord *ra = thread_record(a, tid), *rb = thread_record(b, tid);
    if (!ra || !rb) {
      out.push_back(json{{"tid", tid}, {"change", ra ? "exited" : "new"}});
      continue;
    }
    json j{{"tid", tid}, {"change", "changed"}};
    const CoreThread *ca = core_thread(a, tid), *cb = core_thread(b, tid);
    if (ca && cb) {
      json regs = diff_registers(ca->prstatus.pr_reg, cb->prstatus.pr_reg);
      if (!regs.empty()) j["registers"] = regs;
      bool fp_same = ca->fpregs.size() == cb->fpregs.size() &&
                     std::equal(ca->fpregs.begin(), ca->fpregs.end(), cb->fpregs.begin()) &&
                     ca->xstate.size() == cb->xstate.size() &&
                     std::equal(ca->xstate.begin(), ca->xstate.end(), cb->xstate.begin());
      if (!fp_same) j["fpu_changed"] = true;
    }
    if (ra->sigmask != rb->sigmask)
      j["blocked"] = json{{"added", signal_set(rb->sigmask & ~ra->sigmask)},
                          {"removed", signal_set(ra->sigmask & ~rb->sigmask)}};
    if (ra->syscall_nr != rb->syscall_nr) j["syscall"] = json::array({ra->syscall_nr, rb->syscall_nr});
    std::string_view na = a.view.threads.str_or_empty(ra->comm), nb = b.view.threads.str_or_empty(rb->comm);
    if (na != nb) j["name"] = json::array({na, nb});
    if (j.size() > 2) out.push_back(j);
  }
  return out;
}

json fd_json(const Side &s, const FdRecord &f) {
  return json{{"fd", f.fd}, {"type", fd_kind_name(f.type)}, {"path", s.view.fds.str_or_empty(f.path)}, {"pos", f.pos}};
}

json diff_fds(const Side &a, const Side &b) {
  std::map<i32, const FdRecord *> fa, fb;
  for (const FdRecord &f : a.view.fds.records)
    if (f.pid == a.task->pid) fa[f.fd] = &f;
  for (const FdRecord &f : b.view.fds.records)
    if (f.pid == b.task->pid) fb[f.fd] = &f;
  json out = json::array();
  for (auto &[fd, f] : fa)
    if (!fb.count(fd)) out.push_back(with({{"change", "closed"}}, fd_json(a, *f)));
  for (auto &[fd, f] : fb) {
    auto it = fa.find(fd);
    if (it == fa.end()) {
      out.push_back(with({{"change", "opened"}}, fd_json(b, *f)));
      continue;
    }
    const FdRecord &x = *it->second, &y = *f;
    bool same_object = x.type == y.type && x.ino == y.ino && x.dev == y.dev &&
                       a.view.fds.str_or_empty(x.path) == b.view.fds.str_or_empty(y.path);
    if (!same_object) {
      json j{{"change", "replaced"}};
      j.update(fd_json(b, y));
      j["was"] = fd_json(a, x);
      out.push_back(j);
      continue;
    }
    if (x.pos != y.pos) out.push_back(with({{"change", "moved"}, {"was_pos", x.pos}}, fd_json(b, y)));
    if (x.open_flags != y.open_flags || x.fd_flags != y.fd_flags)
      out.push_back(with(fd_json(b, y), {{"change", "flags"},
                                         {"was_flags", hex(x.open_flags)},
                                         {"flags", hex(y.open_flags)},
                                         {"was_cloexec", bool(x.fd_flags & 1)},
                                         {"cloexec", bool(y.fd_flags & 1)}}));
  }
  std::stable_sort(out.begin(), out.end(), [](const json &x, const json &y) { return x["fd"] < y["fd"]; });
  return out;
}

std::string handler_name(u64 h) { return h == 0 ? "SIG_DFL" : h == 1 ? "SIG_IGN" : hex(h); }

json diff_signals(const Side &a, const Side &b) {
  json out = json::array();
  auto action = [](const Side &s, u32 signo) -> const SigActionRecord * {
    for (const SigActionRecord &r : s.view.sigactions.records)
      if (r.pid == s.task->pid && r.signo == signo) return &r;
    return nullptr;
  };
  for (u32 signo = 1; signo <= 64; signo++) {
    const SigActionRecord *x = action(a, signo), *y = action(b, signo);
    SigActionRecord none{};
    if (!x) x = &none;
    if (!y) y = &none;
    if (x->handler == y->handler && x->flags == y->flags && x->mask == y->mask) continue;
    out.push_back(json{{"change", "action"}, {"signal", signal_name(int(signo))},
                       {"handler", json::array({handler_name(x->handler), handler_name(y->handler)})},
                       {"flags", json::array({hex(x->flags), hex(y->flags)})}});
  }
  // Pending signals, process-wide (tid 0) and per thread, as sets.
  auto pending = [](const Side &s) {
    std::map<i32, u64> by_tid;
    for (const PendingSignalRecord &p : s.view.pending.records)
      if (p.pid == s.task->pid && p.signo >= 1 && p.signo <= 64) by_tid[p.tid] |= u64(1) << (p.signo - 1);
    return by_tid;
  };
  std::map<i32, u64> pa = pending(a), pb = pending(b);
  std::map<i32, bool> tids;
  for (auto &[t, m] : pa) tids[t] = true;
  for (auto &[t, m] : pb) tids[t] = true;
  for (auto &[tid, unused] : tids) {
    u64 x = pa[tid], y = pb[tid];
    if (x == y) continue;
    json j{{"change", "pending"}, {"added", signal_set(y & ~x)}, {"removed", signal_set(x & ~y)}};
    if (tid) j["tid"] = tid;
    out.push_back(j);
  }
  return out;
}

json diff_process(const Side &a, const Side &b) {
  json out = json::object();
  const TaskRecord &x = *a.task, &y = *b.task;
  auto num = [&](const char *name, i64 vx, i64 vy) {
    if (vx != vy) out[name] = json::array({vx, vy});
  };
  auto str = [&](const char *name, std::string_view vx, std::string_view vy) {
    if (vx != vy) out[name] = json::array({vx, vy});
  };
  num("ppid", x.ppid, y.ppid);
  num("pgid", x.pgid, y.pgid);
  num("sid", x.sid, y.sid);
  for (int i = 0; i < 4; i++) {
    static const char *uid_names[] = {"uid", "euid", "suid", "fsuid"}, *gid_names[] = {"gid", "egid", "sgid", "fsgid"};
    num(uid_names[i], x.uid[i], y.uid[i]);
    num(gid_names[i], x.gid[i], y.gid[i]);
  }
  num("umask", x.umask, y.umask);
  num("nice", x.nice, y.nice);
  num("brk", i64(x.brk), i64(y.brk));
  str("comm", a.view.tasks.str_or_empty(x.comm), b.view.tasks.str_or_empty(y.comm));
  str("cwd", a.view.tasks.str_or_empty(x.cwd), b.view.tasks.str_or_empty(y.cwd));
  str("exe", a.view.tasks.str_or_empty(x.exe), b.view.tasks.str_or_empty(y.exe));
  auto limits = [](const Side &s) {
    std::map<u32, std::pair<u64, u64>> m;
    for (const RlimitRecord &r : s.view.rlimits.records)
      if (r.pid == s.task->pid) m[r.resource] = {r.cur, r.max};
    return m;
  };
  auto la = limits(a), lb = limits(b);
  for (auto &[res, v] : lb)
    if (la.count(res) && la[res] != v) {
      out[std::string("rlimit ") + rlimit_name(res)] = json::array({json::array({la[res].first, la[res].second}), json::array({v.first, v.second})});
    }
  return out;
}

// SysV IPC objects (of the image's IPC namespace or the host's), matched
// by kind and id: added, removed, or changed (the fields of `imgtool
// info` that differ, and whether the contents differ: shm bytes,
// semaphore values, queued messages).
json diff_ipc(const Side &a, const Side &b) {
  auto by_id = [](const Side &s) {
    std::map<std::pair<std::string, i64>, std::pair<json, const SysvIpcRecord *>> m;
    json objects = describe_sysv_ipc(s.view)["objects"];
    for (size_t i = 0; i < objects.size() && i < s.view.sysv_ipc.records.size(); i++)
      m[{objects[i]["kind"].get<std::string>(), objects[i]["id"].get<i64>()}] = {objects[i], &s.view.sysv_ipc.records[i]};
    return m;
  };
  auto ma = by_id(a), mb = by_id(b);
  json out = json::array();
  auto ident = [](const json &o) { return json{{"kind", o["kind"]}, {"id", o["id"]}, {"key", o["key"]}}; };
  for (auto &[k, v] : ma)
    if (!mb.count(k)) out.push_back(with({{"change", "removed"}}, ident(v.first)));
  for (auto &[k, v] : mb) {
    auto it = ma.find(k);
    if (it == ma.end()) {
      out.push_back(with({{"change", "added"}}, ident(v.first)));
      continue;
    }
    const json &x = it->second.first, &y = v.first;
    json fields = json::object();
    for (auto &[name, value] : y.items())
      if (!x.contains(name) || x[name] != value) fields[name] = json::array({x.contains(name) ? x[name] : json(), value});
    auto bytes_x = a.view.sysv_ipc.blob(it->second.second->data), bytes_y = b.view.sysv_ipc.blob(v.second->data);
    bool contents = !bytes_x || !bytes_y || bytes_x->size() != bytes_y->size() ||
                    !std::equal(bytes_x->begin(), bytes_x->end(), bytes_y->begin());
    if (fields.empty() && !contents) continue;
    json j = with({{"change", "changed"}}, ident(y));
    if (!fields.empty()) j["fields"] = fields;
    j["contents_differ"] = contents;
    out.push_back(j);
  }
  return out;
}

json side_json(const Side &s) {
  return json{{"file", s.path}, {"pid", s.task->pid}, {"checkpoint_id", s.view.identity.checkpoint_id},
              {"created_sec", s.view.identity.created_sec}};
}

}  // namespace

Expected<json> diff_images(const std::string &path_a, const std::string &path_b, i32 pid) {
  auto a = diff::open_side(path_a, pid);
  if (!a) return make_error("%s: %s", path_a.c_str(), a.error().message().c_str());
  auto b = diff::open_side(path_b, pid);
  if (!b) return make_error("%s: %s", path_b.c_str(), b.error().message().c_str());
  json d{{"schema", 1}, {"a", side_json(*a)}, {"b", side_json(*b)}};
  if (a->task->pid != b->task->pid)
    d["note"] = "the images hold different processes (pid " + std::to_string(a->task->pid) + " and " +
                std::to_string(b->task->pid) + ")";
  d["memory"] = diff::diff_memory(*a, *b);
  d["threads"] = diff_threads(*a, *b);
  d["fds"] = diff_fds(*a, *b);
  d["signals"] = diff_signals(*a, *b);
  d["process"] = diff_process(*a, *b);
  d["ipc"] = diff_ipc(*a, *b);
  d["same"] = d["memory"].empty() && d["threads"].empty() && d["fds"].empty() && d["signals"].empty() &&
              d["process"].empty() && d["ipc"].empty();
  return d;
}

}  // namespace ckpt::tool
