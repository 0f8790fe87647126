#include "describe.h"
#include "names.h"
#include "describe_ipc.h"
#include "describe_tree.h"

#include <ckpt/img/dirty_tracking_note.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <sys/mman.h>
#include <sys/resource.h>

#include <ckpt/img/fd_kinds.h>
#include <ckpt/img/model.h>
#include <ckpt/reader/validate.h>

namespace ckpt::tool {

using namespace img;
using json = nlohmann::ordered_json;

static std::string phdr_prot(u32 flags) {
  std::string s = "---";
  if (flags & PF_R) s[0] = 'r';
  if (flags & PF_W) s[1] = 'w';
  if (flags & PF_X) s[2] = 'x';
  return s;
}

static const char *vma_kind_name(u32 k) {
  switch (static_cast<VmaKind>(k)) {
    case VmaKind::Anon: return "anon";
    case VmaKind::File: return "file";
    case VmaKind::Heap: return "heap";
    case VmaKind::Stack: return "stack";
    case VmaKind::Vdso: return "vdso";
    case VmaKind::Vvar: return "vvar";
    case VmaKind::VvarVclock: return "vvar_vclock";
    case VmaKind::Vsyscall: return "vsyscall";
    case VmaKind::SharedAnon: return "shared_anon";
    case VmaKind::SysvShm: return "sysv_shm";
    case VmaKind::Hugetlb: return "hugetlb";
  }
  return "unknown";
}

static json regs_json(const UserRegs &r) {
  return json{{"rip", hex(r.rip)}, {"rsp", hex(r.rsp)}, {"rbp", hex(r.rbp)}, {"rax", hex(r.rax)},
              {"orig_rax", hex(r.orig_rax)}, {"fs_base", hex(r.fs_base)}, {"gs_base", hex(r.gs_base)}};
}

static json limit_value(u64 v) { return v == RLIM_INFINITY ? json("unlimited") : json(v); }

// Memory of a plain core: PT_LOADs, named from NT_FILE.
static json core_memory(const ImageReader &image, const CoreView &core) {
  json mem = json::array();
  for (const Elf64_Phdr &ph : image.phdrs()) {
    if (ph.p_type != PT_LOAD) continue;
    json m{{"start", hex(ph.p_vaddr)}, {"end", hex(ph.p_vaddr + ph.p_memsz)}, {"prot", phdr_prot(ph.p_flags)}};
    std::string path;
    for (const FileMapping &f : core.files)
      if (ph.p_vaddr >= f.start && ph.p_vaddr < f.end) path = f.path;
    m["kind"] = path.empty() ? "anon" : "file";
    m["path"] = path;
    m["stored_bytes"] = ph.p_filesz;
    m["file_bytes"] = 0;
    m["zero_bytes"] = 0;
    m["parent_bytes"] = 0;
    m["absent_bytes"] = ph.p_memsz - ph.p_filesz;
    mem.push_back(m);
  }
  return mem;
}

static json ckpt_memory(const CkptView &v) {
  json mem = json::array();
  for (const VmaRecord &m : v.vmas.records) {
    u64 by_source[6] = {};  // by PageSource (decode_ckpt checked each is known)
    for (u32 k = 0; k < m.range_count; k++) {
      const PageRangeRecord &r = v.ranges.records[m.first_range + k];
      by_source[r.source] += r.length;
    }
    json j{{"pid", m.pid},
           {"start", hex(m.start)},
           {"end", hex(m.end)},
           {"prot", prot_string(m.prot, m.flags & kVmaShared)},
           {"kind", vma_kind_name(m.kind)},
           {"path", v.vmas.str_or_empty(m.path)},
           {"offset", hex(m.pgoff)},
           {"stored_bytes", by_source[0]},
           {"zero_bytes", by_source[1]},
           {"file_bytes", by_source[2]},
           {"parent_bytes", by_source[3]},
           {"absent_bytes", by_source[4]},
           // Shared copy-on-write with an earlier process of the tree, whose
           // core stores the bytes once (FORMAT.md §9.23).
           {"stored_once_bytes", by_source[5]}};
    if (m.ino) j["inode"] = m.ino;
    mem.push_back(j);
  }
  return mem;
}

// Every CKPT note of PT_NOTE 0 as the registry names it ("kind": null for
// a type this imgtool does not know).
static json ckpt_notes(const ImageReader &image) {
  json notes = json::array();
  for (const NoteRef &n : image.notes()) {
    if (n.owner != kOwnerCkpt || n.type == static_cast<u32>(CkptNote::Integrity)) continue;
    const NoteKindInfo *kind = find_note_kind(n.type);
    auto table = parse_table(n.desc);
    notes.push_back(json{{"type", hex(n.type)},
                         {"kind", kind ? json(kind->name) : json(nullptr)},
                         {"records", table ? json(table->header.record_count) : json(nullptr)},
                         {"bytes", n.desc.size()}});
  }
  return notes;
}

static json ckpt_process(const CkptView &v, const TaskRecord &t, const CoreView &core) {
  json p{{"pid", t.pid},   {"ppid", t.ppid}, {"pgid", t.pgid},
         {"sid", t.sid},   {"comm", v.tasks.str_or_empty(t.comm)},
         {"exe", v.tasks.str_or_empty(t.exe)}, {"cwd", v.tasks.str_or_empty(t.cwd)},
         {"root", v.tasks.str_or_empty(t.root)}, {"umask", t.umask}, {"nice", t.nice},
         {"personality", hex(t.personality)}, {"stopped", bool(t.flags & kTaskStopped)},
         {"uid", {t.uid[0], t.uid[1], t.uid[2], t.uid[3]}}, {"gid", {t.gid[0], t.gid[1], t.gid[2], t.gid[3]}}};
  p["mm"] = json{{"start_code", hex(t.start_code)}, {"end_code", hex(t.end_code)},
                 {"start_data", hex(t.start_data)}, {"end_data", hex(t.end_data)},
                 {"start_brk", hex(t.start_brk)},   {"brk", hex(t.brk)},
                 {"start_stack", hex(t.start_stack)}, {"arg_start", hex(t.arg_start)},
                 {"arg_end", hex(t.arg_end)},       {"env_start", hex(t.env_start)},
                 {"env_end", hex(t.env_end)}};
  json threads = json::array();
  for (const ThreadRecord &th : v.threads.records) {
    if (th.pid != t.pid) continue;
    json j{{"tid", th.tid}, {"name", v.threads.str_or_empty(th.comm)}};
    for (const CoreThread &c : core.threads)
      if (c.prstatus.pr_pid == th.tid) j["registers"] = regs_json(c.prstatus.pr_reg);
    j["blocked"] = signal_set(th.sigmask);
    j["in_syscall"] = bool(th.flags & kThreadInSyscall);
    if (th.flags & kThreadInSyscall) j["syscall"] = th.syscall_nr;
    if (th.altstack_size) j["sigaltstack"] = json{{"sp", hex(th.altstack_sp)}, {"size", th.altstack_size}};
    json pending = json::array();
    for (const PendingSignalRecord &s : v.pending.records)
      if (s.pid == t.pid && s.tid == th.tid) pending.push_back(signal_name(s.signo));
    j["pending"] = pending;
    if (th.flags & kThreadPrivileges) {
      static const char *modes[] = {"disabled", "strict", "filter"};
      j["privileges"] = json{{"cap_effective", hex(th.cap_effective)},
                             {"cap_permitted", hex(th.cap_permitted)},
                             {"cap_inheritable", hex(th.cap_inheritable)},
                             {"cap_bounding", hex(th.cap_bounding)},
                             {"cap_ambient", hex(th.cap_ambient)},
                             {"securebits", hex(th.securebits)},
                             {"no_new_privs", bool(th.flags & kThreadNoNewPrivs)},
                             {"seccomp", th.seccomp_mode < 3 ? modes[th.seccomp_mode] : "unknown"},
                             {"seccomp_filters", th.seccomp_filter_count}};
    }
    threads.push_back(j);
  }
  p["threads"] = threads;
  p["capabilities"] = json{{"effective", hex(t.cap_effective)},     {"permitted", hex(t.cap_permitted)},
                           {"inheritable", hex(t.cap_inheritable)}, {"bounding", hex(t.cap_bounding)},
                           {"ambient", hex(t.cap_ambient)}};

  json fds = json::array();
  for (const FdRecord &f : v.fds.records) {
    if (f.pid != t.pid) continue;
    json j{{"fd", f.fd}, {"type", fd_kind_name(f.type)}, {"path", v.fds.str_or_empty(f.path)},
           {"pos", f.pos}, {"flags", hex(f.open_flags)}, {"cloexec", bool(f.fd_flags & 1)},
           {"unlinked", bool(f.flags & kFdUnlinked)}, {"file_id", f.file_id}};
    // The kind's own state (an eventfd's counter), as its registry entry words it.
    if (const FdKindInfo *kind = fd_kind_info(f.type))
      if (std::string state = kind->describe(v.fds, f); !state.empty()) j["state"] = state;
    fds.push_back(j);
  }
  p["fds"] = fds;

  json actions = json::array();
  for (const SigActionRecord &s : v.sigactions.records) {
    if (s.pid != t.pid) continue;
    std::string handler = s.handler == 0 ? "SIG_DFL" : s.handler == 1 ? "SIG_IGN" : hex(s.handler);
    actions.push_back(json{{"signal", signal_name(s.signo)}, {"handler", handler}, {"flags", hex(s.flags)},
                           {"mask", signal_set(s.mask)}});
  }
  json shared_pending = json::array();
  for (const PendingSignalRecord &s : v.pending.records)
    if (s.pid == t.pid && s.tid == 0) shared_pending.push_back(signal_name(s.signo));
  p["signals"] = json{{"actions", actions}, {"pending", shared_pending}};

  json timers = json::array();
  static const char *timer_kinds[] = {"itimer_real", "itimer_virtual", "itimer_prof", "posix"};
  for (const TimerRecord &tm : v.timers.records) {
    if (tm.pid != t.pid) continue;
    json one{{"kind", tm.kind < 4 ? timer_kinds[tm.kind] : "unknown"}, {"value_ns", tm.value_ns},
             {"interval_ns", tm.interval_ns}};
    if (static_cast<TimerKind>(tm.kind) == TimerKind::Posix) {
      one["id"] = tm.timer_id;
      one["clock"] = tm.clock_id;
      one["notify"] = tm.sigev_notify;
      one["signal"] = tm.sigev_signo;
      one["value"] = tm.sigev_value;
      if (tm.sigev_notify & 4) one["tid"] = tm.sigev_tid;  // SIGEV_THREAD_ID
    }
    timers.push_back(one);
  }
  p["timers"] = timers;
  json limits = json::array();
  for (const RlimitRecord &r : v.rlimits.records)
    if (r.pid == t.pid)
      limits.push_back(json{{"resource", rlimit_name(r.resource)}, {"cur", limit_value(r.cur)},
                            {"max", limit_value(r.max)}});
  p["rlimits"] = limits;
  return p;
}

static json core_process(const CoreView &core) {
  json p = json::object();
  if (core.psinfo) {
    const PrPsInfo &ps = *core.psinfo;
    p["pid"] = ps.pr_pid;
    p["ppid"] = ps.pr_ppid;
    p["pgid"] = ps.pr_pgrp;
    p["sid"] = ps.pr_sid;
    p["comm"] = std::string(ps.pr_fname, strnlen(ps.pr_fname, sizeof ps.pr_fname));
    p["args"] = std::string(ps.pr_psargs, strnlen(ps.pr_psargs, sizeof ps.pr_psargs));
    p["uid"] = {ps.pr_uid};
    p["gid"] = {ps.pr_gid};
  } else if (!core.threads.empty()) {
    p["pid"] = core.threads[0].prstatus.pr_pid;
  }
  json threads = json::array();
  for (const CoreThread &t : core.threads) {
    json j{{"tid", t.prstatus.pr_pid}, {"registers", regs_json(t.prstatus.pr_reg)},
           {"blocked", signal_set(t.prstatus.pr_sighold)}, {"pending", signal_set(t.prstatus.pr_sigpend)}};
    if (t.prstatus.pr_cursig) j["signal"] = signal_name(t.prstatus.pr_cursig);
    threads.push_back(j);
  }
  p["threads"] = threads;
  return p;
}

Expected<json> describe_image(const std::string &path) {
  auto image = ImageReader::open(path);
  if (!image) return image.error();
  // A ckpt image is trusted only once its checksums hold; a damaged one is
  // refused rather than summarised from bytes that may be wrong. A damaged
  // e_ident marker must not pass a damaged image off as a plain core: any
  // file that carries a CKPT integrity note is checked.
  if (image->has_ckpt_marker() || image->find_ckpt(CkptNote::Integrity)) CKPT_TRY(verify_integrity(*image));
  auto core = decode_core(*image);
  if (!core) return core.error();

  json info{{"schema", kInfoSchema}, {"file", path}};
  if (!image->has_ckpt_marker() || !image->find_ckpt(CkptNote::Identity)) {
    info["kind"] = "core";
    info["restorable"] = false;
    info["not_restorable_because"] = "an ordinary core file, not a ckpt image";
    info["not_restorable_kind"] = "core";
    info["processes"] = json::array({core_process(*core)});
    info["memory"] = core_memory(*image, *core);
    return info;
  }
  u32 unknown_notes = 0;
  auto view = decode_ckpt(*image, [&](const Error &) { unknown_notes++; });
  if (!view) return view.error();
  const IdentityRecord &id = view->identity;
  info["kind"] = "ckpt";
  // What restore itself checks, so that info agrees with it.
  // Every checksum was verified above, in one pass: the restorability
  // checks need not read the stored memory a second time.
  reader::Restorability verdict = reader::check_restorable(path, /*check_memory=*/false);
  info["restorable"] = verdict.restorable();
  if (!verdict.restorable()) {
    info["not_restorable_because"] = verdict.message;
    info["not_restorable_kind"] = verdict.obstacle == reader::Obstacle::Damaged       ? "damaged"
                                  : verdict.obstacle == reader::Obstacle::Unsupported ? "unsupported"
                                                                                      : "here_now";
  }
  char when[64];
  time_t secs = static_cast<time_t>(id.created_sec);
  struct tm tm;
  gmtime_r(&secs, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  info["format"] = json{{"major", image->format_major()}, {"minor", id.format_minor}};
  // The form (FORMAT.md §12.3): "core", or "exec" with the launcher's place.
  if (const auto &exec = image->exec_form())
    info["form"] = json{{"form", "exec"}, {"launcher_offset", exec->launcher_offset},
                        {"launcher_size", exec->file_size - exec->launcher_offset}};
  else
    info["form"] = json{{"form", "core"}};
  info["identity"] = json{{"image_id", reader::image_id_hex(id.image_id)},
                          {"created", when},
                          {"created_sec", id.created_sec},
                          {"checkpoint_id", id.checkpoint_id},
                          {"root_pid", id.root_pid},
                          {"kernel_release", view->identity_table.str_or_empty(id.kernel_release)},
                          {"hostname", view->identity_table.str_or_empty(id.hostname)},
                          {"writer", view->identity_table.str_or_empty(id.writer)},
                          {"xsave_features", hex(id.xsave_features)},
                          {"xsave_size", id.xsave_size},
                          {"incremental", bool(id.flags & kIdentityIncremental)}};
  json procs = json::array();
  for (const TaskRecord &t : view->tasks.records) procs.push_back(ckpt_process(*view, t, *core));
  // A tree image: each embedded core's process, described like the root.
  json memory = ckpt_memory(*view);
  auto tree = describe_tree(*image, *view, [&](const CkptView &v, const TaskRecord &t, const CoreView &c) {
    procs.push_back(ckpt_process(v, t, c));
    for (json &m : ckpt_memory(v)) memory.push_back(std::move(m));
  });
  if (!tree) return tree.error();
  info["processes"] = procs;
  info["tree"] = *tree;
  info["memory"] = memory;
  if (view->parent) {
    const ParentRecord &p = view->parent->records[0];
    info["parent"] = json{{"image_id", reader::image_id_hex(p.image_id)},
                          {"path_hint", view->parent->str_or_empty(p.path_hint)}};
  } else {
    info["parent"] = nullptr;
  }
  // The dump's dirty tracker (not a resource of the program): whether it
  // left one armed, and how this image's pages were chosen against PREV.
  auto tracking = read_dirty_tracking(*image);
  if (!tracking) return tracking.error();
  if (*tracking && !(*tracking)->records.empty()) {
    const DirtyTrackingRecord &t = (*tracking)->records[0];
    u64 armed_bytes = 0;
    for (auto [start, end] : armed_ranges(**tracking, t)) armed_bytes += end - start;
    info["dirty_tracking"] = json{{"armed", t.tracker_ino != 0},
                                  {"armed_bytes", armed_bytes},
                                  {"used", (t.flags & kTrackingUsed) != 0},
                                  {"tracked_bytes", t.tracked_bytes},
                                  {"written_bytes", t.written_bytes},
                                  {"compared_bytes", t.compared_bytes}};
  } else {
    info["dirty_tracking"] = nullptr;
  }
  json stored_files = json::array();
  for (const StoredFileRecord &f : view->stored_files.records) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", f.mode & 07777);
    stored_files.push_back(json{{"path", std::string(view->stored_files.str_or_empty(f.path))},
                                {"inode", f.ino},
                                {"size", f.size},
                                {"mode", mode},
                                {"uid", f.uid},
                                {"gid", f.gid}});
  }
  info["stored_files"] = stored_files;
  info["ipc"] = describe_sysv_ipc(*view);
  info["notes"] = ckpt_notes(*image);
  info["unknown_notes"] = unknown_notes;
  json chain = json::array();
  for (const auto &link : verdict.report.chain) chain.push_back(json{{"path", link.path},
                                                                    {"image_id", link.image_id},
                                                                    {"stored_pages", link.stored_pages},
                                                                    {"parent_pages", link.parent_pages}});
  info["chain"] = chain;
  return info;
}

std::string render_json(const json &info) {
  return info.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace ckpt::tool
