#include <ckpt/img/model.h>

#include <ckpt/img/assert.h>

#include <set>

#include <cstring>
#include <optional>
#include <string>

namespace ckpt::img {

Expected<CoreView> decode_core(const ImageReader &image) {
  CoreView core;
  // Like elfutils, read only the first PT_NOTE: that is where the standard
  // notes must be for every reader to see them.
  u32 first = image.notes().empty() ? 0 : image.notes().front().phdr;
  for (const NoteRef &n : image.notes()) {
    if (n.phdr != first) continue;
    auto where = [&](const char *what) {
      return make_error("%s note %u at offset %llu", what, n.index, (unsigned long long)n.offset);
    };
    if (n.owner == kOwnerCore) {
      switch (n.type) {
        case kNtPrstatus: {
          if (n.desc.size() != sizeof(PrStatus))
            return make_error("%s has %zu bytes, not %zu", where("NT_PRSTATUS").message().c_str(), n.desc.size(),
                              sizeof(PrStatus));
          CoreThread t;
          std::memcpy(&t.prstatus, n.desc.data(), sizeof(PrStatus));
          core.threads.push_back(t);
          break;
        }
        case kNtPrpsinfo: {
          if (n.desc.size() != sizeof(PrPsInfo))
            return make_error("%s has %zu bytes, not %zu", where("NT_PRPSINFO").message().c_str(), n.desc.size(),
                              sizeof(PrPsInfo));
          PrPsInfo p;
          std::memcpy(&p, n.desc.data(), sizeof p);
          core.psinfo = p;
          break;
        }
        case kNtFpregset:
          if (core.threads.empty()) return where("NT_FPREGSET before any NT_PRSTATUS");
          if (n.desc.size() != kFpregsetSize)
            return make_error("%s has %zu bytes, not 512", where("NT_FPREGSET").message().c_str(), n.desc.size());
          core.threads.back().fpregs = n.desc;
          break;
        case kNtSiginfo:
          core.siginfo = n.desc;
          break;
        case kNtAuxv: {
          if (n.desc.size() % 16)
            return make_error("%s has %zu bytes, not a whole number of pairs", where("NT_AUXV").message().c_str(),
                              n.desc.size());
          core.auxv.resize(n.desc.size() / 8);
          if (!n.desc.empty()) std::memcpy(core.auxv.data(), n.desc.data(), n.desc.size());
          break;
        }
        case kNtFile: {
          auto files = decode_nt_file(n.desc);
          if (!files) return files.error().context(where("NT_FILE").message());
          core.files = files.take();
          break;
        }
        default:
          break;  // unknown notes are skipped, never fatal
      }
    } else if (n.owner == kOwnerLinux && n.type == kNtX86Xstate) {
      if (core.threads.empty()) return where("NT_X86_XSTATE before any NT_PRSTATUS");
      if (n.desc.size() < 576) return make_error("%s has only %zu bytes", where("NT_X86_XSTATE").message().c_str(),
                                                 n.desc.size());
      core.threads.back().xstate = n.desc;
    }
  }
  return core;
}

// A CKPT note's bytes and how to name it in an error, from wherever the
// notes are: an image file, or notes not written yet.
struct FoundNote {
  std::span<const u8> desc;
  std::string where;  ///< e.g. " note at offset 1234"
};

template <typename R, typename Find>
static Status decode_into(Find &find, CkptNote type, const char *name, Table<R> &out) {
  std::optional<FoundNote> n = find(type);
  if (!n) return {};
  auto t = decode_table<R>(n->desc);
  if (!t) return t.error().context(std::string(name) + n->where);
  out = t.take();
  return {};
}

// One note kind's table, decoded as its NoteCount says: any number of
// records, exactly one, or an optional one.
template <NoteCount C, typename R, typename Find>
static Status decode_kind(Find &find, CkptNote type, const char *name, NoteTable<C, R> &out) {
  if constexpr (C == NoteCount::Many) {
    return decode_into(find, type, name, out);
  } else {
    if (!find(type)) {
      if (C == NoteCount::One) return make_error("no CKPT %s note", name);
      return {};
    }
    Table<R> t;
    CKPT_TRY(decode_into(find, type, name, t));
    if (t.records.size() != 1) return make_error("%s note has %zu records, not 1", name, t.records.size());
    out = std::move(t);
    return {};
  }
}

// Every string and blob of every record lies in its table's data area.
template <typename R>
static Status check_refs(const Table<R> &table, const char *record_name) {
  Status result;
  for (size_t i = 0; i < table.records.size() && result; i++) {
    auto context = [&] { return std::string(record_name) + " record " + std::to_string(i); };
    for_each_ref(
        table.records[i],
        [&](StrRef r) {
          if (!result) return;
          if (auto s = table.str(r); !s) result = s.error().context(context());
        },
        [&](BlobRef r) {
          if (!result) return;
          if (auto b = table.blob(r); !b) result = b.error().context(context());
        });
  }
  return result;
}
template <typename R>
static Status check_refs(const std::optional<Table<R>> &table, const char *record_name) {
  return table ? check_refs(*table, record_name) : Status{};
}

// Threads' privilege fields and their seccomp filters: every filter belongs
// to a thread in filter mode, each such thread has exactly its count of
// filters at positions 0..count-1, and each program is a whole number of
// classic BPF instructions the kernel could have accepted.
static Status check_seccomp(const CkptView &v) {
  std::vector<std::vector<bool>> seen(v.threads.records.size());
  for (size_t i = 0; i < v.threads.records.size(); i++) {
    const ThreadRecord &t = v.threads.records[i];
    if (!(t.flags & kThreadPrivileges)) continue;
    if (t.seccomp_mode > static_cast<u32>(SeccompMode::Filter))
      return make_error("thread record %zu (tid %d): unknown seccomp mode %u", i, t.tid, t.seccomp_mode);
    if (t.seccomp_mode != static_cast<u32>(SeccompMode::Filter) && t.seccomp_filter_count)
      return make_error("thread record %zu (tid %d): %u seccomp filters but not in filter mode", i, t.tid,
                        t.seccomp_filter_count);
    if (t.seccomp_filter_count > v.seccomp_filters.records.size())
      return make_error("thread record %zu (tid %d): %u seccomp filters, the image has %zu", i, t.tid,
                        t.seccomp_filter_count, v.seccomp_filters.records.size());
    seen[i].assign(t.seccomp_filter_count, false);
  }
  for (size_t i = 0; i < v.seccomp_filters.records.size(); i++) {
    const SeccompFilterRecord &f = v.seccomp_filters.records[i];
    auto bad = [&](const char *what) {
      return make_error("seccomp filter record %zu (tid %d, position %u): %s", i, f.tid, f.position, what);
    };
    auto prog = v.seccomp_filters.blob(f.program);
    CKPT_ASSERT(prog) << "seccomp filter record " << i << ": checked by check_refs";
    if (prog->empty() || prog->size() % 8 || prog->size() / 8 > kMaxSeccompInsns)
      return bad("the program is not 1 to 4096 instructions of 8 bytes");
    if (f.flags & ~kSeccompFilterFlagLog) return bad("unknown filter flags");
    size_t t = 0;
    while (t < v.threads.records.size() && v.threads.records[t].tid != f.tid) t++;
    if (t == v.threads.records.size()) return bad("no thread has this tid");
    const ThreadRecord &tr = v.threads.records[t];
    if (!(tr.flags & kThreadPrivileges) || tr.seccomp_mode != static_cast<u32>(SeccompMode::Filter))
      return bad("its thread is not in seccomp filter mode");
    if (f.position >= seen[t].size()) return bad("position beyond the thread's filter count");
    if (seen[t][f.position]) return bad("a second filter at this position");
    seen[t][f.position] = true;
  }
  for (size_t i = 0; i < seen.size(); i++)
    for (bool s : seen[i])
      if (!s)
        return make_error("thread record %zu (tid %d): %u seccomp filters counted, fewer stored", i,
                          v.threads.records[i].tid, v.threads.records[i].seccomp_filter_count);
  return {};
}

// SysV IPC objects (§ SysvIpc): data of the size their kind implies, every
// message inside the data, one object per kind and id.
static Status check_sysv_ipc(const CkptView &v) {
  if (v.ipc_namespace.records.size() > 1)
    return make_error("IPC namespace note has %zu records, not 1", v.ipc_namespace.records.size());
  std::set<std::pair<u32, i32>> seen;
  for (size_t i = 0; i < v.sysv_ipc.records.size(); i++) {
    const SysvIpcRecord &r = v.sysv_ipc.records[i];
    if (r.kind > static_cast<u32>(SysvIpcKind::Msg))
      return make_error("SysV IPC record %zu: unknown kind %u", i, r.kind);
    if (r.id < 0 || !seen.insert({r.kind, r.id}).second)
      return make_error("SysV IPC record %zu: id %d is negative or repeated", i, r.id);
    switch (static_cast<SysvIpcKind>(r.kind)) {
      case SysvIpcKind::Shm:
        if (r.data.length != ((r.flags & kSysvIpcInRoot) ? 0 : r.size))
          return make_error("SysV IPC record %zu (shm %d): %llu bytes stored for a segment of %llu", i, r.id,
                            (unsigned long long)r.data.length, (unsigned long long)r.size);
        break;
      case SysvIpcKind::Sem:
        if (r.count == 0 || r.data.length != u64(r.count) * 2)
          return make_error("SysV IPC record %zu (semaphore set %d): %llu bytes stored for %u semaphores", i, r.id,
                            (unsigned long long)r.data.length, r.count);
        break;
      case SysvIpcKind::Msg: {
        std::span<const u8> bytes = *v.sysv_ipc.blob(r.data);  // checked above
        u64 at = 0;
        for (u32 m = 0; m < r.count; m++) {
          SysvMessageHeader h{};
          // `at` can pass the end by a body's padding (up to 7 bytes): compare before subtracting.
          if (at > bytes.size() || bytes.size() - at < sizeof h)
            return make_error("SysV IPC record %zu (queue %d): message %u lies past its data", i, r.id, m);
          std::memcpy(&h, bytes.data() + at, sizeof h);
          at += sizeof h;
          if (h.mtype <= 0 || h.length > bytes.size() - at)
            return make_error("SysV IPC record %zu (queue %d): message %u has type %lld and %llu bytes past its data",
                              i, r.id, m, (long long)h.mtype, (unsigned long long)h.length);
          at += (h.length + 7) & ~u64(7);
        }
        if (at != bytes.size())
          return make_error("SysV IPC record %zu (queue %d): %zu bytes of data for %u messages", i, r.id, bytes.size(),
                            r.count);
        break;
      }
    }
  }
  return {};
}

// The Tree's process-level rules (§13.5): one record per further process,
// distinct pids, each parent the root or an earlier record.
static Status check_tree_records(const CkptView &v) {
  const auto &tree = v.tree.records;
  if (tree.empty()) return {};  // a single process (writers before format 1.2 left process_count unchecked)
  if (v.identity.process_count != 1 + tree.size())
    return make_error("identity says %u processes but the image has 1 + %zu tree records", v.identity.process_count,
                      tree.size());
  std::set<i32> seen{v.identity.root_pid};
  for (size_t i = 0; i < tree.size(); i++) {
    const TreeRecord &r = tree[i];
    if (r.pid <= 0 || seen.count(r.pid))
      return make_error("tree record %zu: pid %d is not a new positive pid", i, r.pid);
    if (!seen.count(r.ppid))
      return make_error("tree record %zu (pid %d): parent %d is neither the root nor an earlier record", i, r.pid,
                        r.ppid);
    seen.insert(r.pid);
  }
  return {};
}

// Every CKPT table, decoded and cross-checked (strings, blobs, seccomp
// filters, stored files): all of decode_ckpt() but what needs the
// program headers. The one list of CKPT tables a view is made of.
template <typename Find>
static Expected<CkptView> decode_tables(Find &&find) {
  CkptView v;
  if (!find(CkptNote::Identity)) return make_error("no CKPT identity note: not a ckpt image");
#define CKPT_NOTE_DECODE(name, type, R, builder, view, scope, count, label, record_label) \
  CKPT_TRY((decode_kind<NoteCount::count, R>(find, CkptNote::name, label, v.view)));
  CKPT_NOTE_KINDS(CKPT_NOTE_DECODE)
#undef CKPT_NOTE_DECODE
  v.identity = v.identity_table.records[0];

  // Cross references. Every string and blob must lie in its table.
#define CKPT_NOTE_CHECK_REFS(name, type, R, builder, view, scope, count, label, record_label) \
  CKPT_TRY(check_refs(v.view, record_label));
  CKPT_NOTE_KINDS(CKPT_NOTE_CHECK_REFS)
#undef CKPT_NOTE_CHECK_REFS
  CKPT_TRY(check_seccomp(v));
  CKPT_TRY(check_sysv_ipc(v));
  CKPT_TRY(check_tree_records(v));
  for (size_t i = 0; i < v.stored_files.records.size(); i++) {
    const StoredFileRecord &f = v.stored_files.records[i];
    if (f.content.length != f.size)
      return make_error("stored file record %zu: %llu bytes stored for a file of %llu", i,
                        (unsigned long long)f.content.length, (unsigned long long)f.size);
  }
  return v;
}

Expected<CkptView> decode_ckpt(const ImageReader &image, const WarningHandler &warn) {
  // Notes of a kind a newer writer added: readers skip them (FORMAT.md
  // §8.3), and tell a caller who asks, so that what it shows is known to be
  // incomplete.
  if (warn)
    for (const NoteRef &n : image.notes())
      if (n.owner == kOwnerCkpt && n.type != static_cast<u32>(CkptNote::Integrity) && !find_note_kind(n.type))
        warn(make_error("CKPT note %u (type 0x%x) at offset %llu is of an unknown kind", n.index, n.type,
                        (unsigned long long)n.offset));
  auto found = decode_tables([&](CkptNote type) -> std::optional<FoundNote> {
    const NoteRef *n = image.find_ckpt(type);
    if (!n) return std::nullopt;
    return FoundNote{n->desc, " note at offset " + std::to_string(n->offset)};
  });
  if (!found) return found.error();
  CkptView v = found.take();

  auto tree = check_tree_layout(image);
  if (!tree) return tree.error();

  // VMAs: ordered, non-empty, and covered exactly by their page ranges,
  // each Image range lying inside the stored bytes of its PT_LOAD.
  const auto &ph = image.phdrs();
  for (size_t i = 0; i < v.vmas.records.size(); i++) {
    const VmaRecord &m = v.vmas.records[i];
    auto bad = [&](const char *what) {
      return make_error("VMA record %zu (0x%llx-0x%llx): %s", i, (unsigned long long)m.start,
                        (unsigned long long)m.end, what);
    };
    if (m.start >= m.end || m.start % kPageSize || m.end % kPageSize) return bad("not a page-aligned, non-empty range");
    if (u64(m.first_range) + m.range_count > v.ranges.records.size()) return bad("page ranges out of bounds");
    u64 at = m.start;
    for (u32 k = 0; k < m.range_count; k++) {
      const PageRangeRecord &r = v.ranges.records[m.first_range + k];
      if (r.start != at || r.length == 0 || r.length > m.end - at) return bad("page ranges do not tile the VMA");
      if (r.source > static_cast<u32>(PageSource::Earlier)) return bad("page range has an unknown source");
      if (static_cast<PageSource>(r.source) == PageSource::Image) {
        if (r.segment >= ph.size() || ph[r.segment].p_type != PT_LOAD) return bad("page range names no PT_LOAD");
        const Elf64_Phdr &p = ph[r.segment];
        if (r.start < p.p_vaddr || r.start - p.p_vaddr > p.p_filesz || r.length > p.p_filesz - (r.start - p.p_vaddr))
          return bad("page range lies outside the stored bytes of its PT_LOAD");
      }
      if (static_cast<PageSource>(r.source) == PageSource::Parent && !v.parent)
        return bad("page range refers to a parent image but the image has none");
      if (static_cast<PageSource>(r.source) == PageSource::Earlier) {
        // Bytes stored once by an earlier core of the same file (§9.23):
        // only an embedded core has any before it.
        if (r.segment >= v.cow_pages.records.size()) return bad("page range names no copy-on-write pages record");
        const CowPagesRecord &c = v.cow_pages.records[r.segment];
        if (c.start != r.start || c.length != r.length)
          return bad("page range and its copy-on-write pages record differ");
        if (c.file_offset % kPageSize || c.file_offset > image.base_offset() ||
            c.length > image.base_offset() - c.file_offset)
          return bad("copy-on-write pages lie outside the earlier cores of the file");
      }
      at += r.length;
    }
    if (at != m.end) return bad("page ranges do not tile the VMA");
  }
  return v;
}

Expected<CkptView> decode_ckpt_notes(std::span<const Note> notes) {
  return decode_tables([&](CkptNote type) -> std::optional<FoundNote> {
    for (const Note &n : notes)
      if (n.owner == kOwnerCkpt && n.type == static_cast<u32>(type)) return FoundNote{n.desc, " note"};
    return std::nullopt;
  });
}

StoredRange stored_range(const ImageReader &image, const PageRangeRecord &range) {
  const Elf64_Phdr &seg = image.phdrs()[range.segment];
  u64 offset = seg.p_offset + (range.start - seg.p_vaddr);
  // An embedded core's offsets are relative to its own ELF header; the
  // file offset is where its bytes are in the whole file (§12.1).
  return {image.base_offset() + offset, image.bytes().subspan(offset, range.length)};
}

StoredRange stored_range(const ImageReader &image, const CkptView &view, const PageRangeRecord &range) {
  if (static_cast<PageSource>(range.source) != PageSource::Earlier) return stored_range(image, range);
  // decode_ckpt checked the record exists, matches the range and lies in
  // the file before this core.
  const CowPagesRecord &c = view.cow_pages.records[range.segment];
  return {c.file_offset, image.file_bytes().subspan(c.file_offset, range.length)};
}

}  // namespace ckpt::img
