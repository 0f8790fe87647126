#include "describe_ipc.h"

#include <cstdio>
#include <cstring>

#include "names.h"

namespace ckpt::tool {

using namespace img;
using json = nlohmann::ordered_json;

static const char *ipc_kind_name(u32 k) {
  switch (static_cast<SysvIpcKind>(k)) {
    case SysvIpcKind::Shm: return "shm";
    case SysvIpcKind::Sem: return "sem";
    case SysvIpcKind::Msg: return "msg";
  }
  return "unknown";
}

json describe_sysv_ipc(const CkptView &v) {
  bool own = !v.ipc_namespace.records.empty() && (v.ipc_namespace.records[0].flags & kIpcNsOwn);
  json objects = json::array();
  for (const SysvIpcRecord &r : v.sysv_ipc.records) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", r.mode & 0777);
    json o{{"kind", ipc_kind_name(r.kind)}, {"id", r.id},       {"key", hex(u32(r.key))}, {"mode", mode},
           {"uid", r.uid},                  {"gid", r.gid},     {"cuid", r.cuid},         {"cgid", r.cgid}};
    auto data = v.sysv_ipc.blob(r.data);
    switch (static_cast<SysvIpcKind>(r.kind)) {
      case SysvIpcKind::Shm:
        o["size"] = r.size;
        o["cpid"] = r.cpid;
        o["lpid"] = r.lpid;
        o["locked"] = bool(r.mode & kSysvShmLocked);
        o["removed"] = bool(r.mode & kSysvShmDest);
        break;
      case SysvIpcKind::Sem: {
        json values = json::array();
        for (u32 i = 0; data && i < r.count && 2 * (i + 1) <= data->size(); i++) {
          u16 val;
          std::memcpy(&val, data->data() + 2 * i, 2);
          values.push_back(val);
        }
        o["values"] = values;
        break;
      }
      case SysvIpcKind::Msg: {
        o["qbytes"] = r.size;
        json messages = json::array();
        u64 at = 0;
        for (u32 i = 0; data && i < r.count && data->size() - at >= sizeof(SysvMessageHeader); i++) {
          SysvMessageHeader h;
          std::memcpy(&h, data->data() + at, sizeof h);
          messages.push_back(json{{"type", h.mtype}, {"bytes", h.length}});
          at += sizeof h + ((h.length + 7) & ~u64(7));
          if (at > data->size()) break;
        }
        o["messages"] = messages;
        break;
      }
    }
    objects.push_back(o);
  }
  return json{{"namespace", own ? "own" : "host"}, {"objects", objects}};
}

void render_sysv_ipc_text(const json &info, std::string &out) {
  if (!info.contains("ipc") || info["ipc"]["objects"].empty()) return;
  const json &ipc = info["ipc"];
  out += "\nSysV IPC (";
  out += ipc["namespace"] == "own" ? "its own IPC namespace" : "the host's IPC namespace";
  out += "):\n";
  for (const json &o : ipc["objects"]) {
    char b[160];
    std::snprintf(b, sizeof b, "  %s %d key %s mode %s %u:%u", o["kind"].get<std::string>().c_str(), o["id"].get<int>(),
                  o["key"].get<std::string>().c_str(), o["mode"].get<std::string>().c_str(), o["uid"].get<unsigned>(),
                  o["gid"].get<unsigned>());
    std::string line = b;
    if (o["kind"] == "shm") {
      line += "  " + std::to_string(o["size"].get<u64>()) + " bytes";
      if (o["locked"].get<bool>()) line += ", locked";
      if (o["removed"].get<bool>()) line += ", marked for removal";
    } else if (o["kind"] == "sem") {
      line += "  values";
      for (const json &val : o["values"]) line += " " + std::to_string(val.get<unsigned>());
    } else if (o["kind"] == "msg") {
      u64 bytes = 0;
      for (const json &m : o["messages"]) bytes += m["bytes"].get<u64>();
      line += "  " + std::to_string(o["messages"].size()) + " messages, " + std::to_string(bytes) + " bytes";
    }
    out += line + "\n";
  }
}

}  // namespace ckpt::tool
