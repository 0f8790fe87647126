// The CKPT note registry (CKPT_NOTE_KINDS in format.h) as data, and each
// record type's references into its table's data area.
#pragma once

#include <iterator>
#include <type_traits>

#include <ckpt/img/format.h>
#include <ckpt/img/records.h>
#include <ckpt/img/table.h>

namespace ckpt::img {

/// One CKPT note kind, as its CKPT_NOTE_KINDS line gives it.
struct NoteKindInfo {
  CkptNote type;
  const char *name;          ///< e.g. "signal actions"
  const char *record_name;   ///< e.g. "signal action"
  NoteScope scope;
  NoteCount count;
  u32 version;               ///< table version the writer writes
  u32 record_size;           ///< sizeof(Record) today; readers take any size >= kMinRecordSize
};

inline constexpr NoteKindInfo kNoteKinds[] = {
#define CKPT_NOTE_KIND_INFO(name, type, R, builder, view, scope, count, label, record_label) \
  {CkptNote::name, label, record_label, NoteScope::scope, NoteCount::count, 1, sizeof(R)},
    CKPT_NOTE_KINDS(CKPT_NOTE_KIND_INFO)
#undef CKPT_NOTE_KIND_INFO
};

/// The registry entry of a CKPT note type, or null for one this libimg does
/// not know (a newer writer's) and for the integrity note.
constexpr const NoteKindInfo *find_note_kind(u32 type) {
  for (const NoteKindInfo &k : kNoteKinds)
    if (static_cast<u32>(k.type) == type) return &k;
  return nullptr;
}

namespace detail {
constexpr bool note_kinds_in_type_order() {
  for (size_t i = 1; i < std::size(kNoteKinds); i++)
    if (static_cast<u32>(kNoteKinds[i - 1].type) >= static_cast<u32>(kNoteKinds[i].type)) return false;
  return static_cast<u32>(kNoteKinds[std::size(kNoteKinds) - 1].type) < static_cast<u32>(CkptNote::Integrity);
}
template <typename R> concept HasPid = requires(R r) { r.pid; };
template <typename R> concept HasTid = requires(R r) { r.tid; };
template <NoteScope S, typename R>
constexpr bool scope_fits() {
  if constexpr (S == NoteScope::Process) return HasPid<R>;
  else if constexpr (S == NoteScope::Thread) return HasPid<R> && HasTid<R>;
  else return true;
}
}  // namespace detail
static_assert(detail::note_kinds_in_type_order(),
              "CKPT_NOTE_KINDS must list types in ascending order, below the integrity note's");
#define CKPT_NOTE_KIND_CHECKS(name, type, R, builder, view, scope, count, ...)                         \
  static_assert(std::is_trivially_copyable_v<R> && sizeof(R) % 8 == 0 && sizeof(R) >= kMinRecordSize, \
                #R " must be a trivially copyable record of whole u64s");                             \
  static_assert(detail::scope_fits<NoteScope::scope, R>(), #R " lacks the pid (and tid) its scope needs");
CKPT_NOTE_KINDS(CKPT_NOTE_KIND_CHECKS)
#undef CKPT_NOTE_KIND_CHECKS

// ---- References into the data area ------------------------------------------
// for_each_ref(record, on_str, on_blob) calls on_str(StrRef) and
// on_blob(BlobRef) for every reference the record holds. There is one per
// record type and no catch-all, so a record type without its own does not
// build: decoding checks every reference through these.

template <typename S, typename B>
void for_each_ref(const IdentityRecord &r, S &&on_str, B &&) {
  on_str(r.kernel_release);
  on_str(r.hostname);
  on_str(r.writer);
}
template <typename S, typename B>
void for_each_ref(const TaskRecord &r, S &&on_str, B &&on_blob) {
  for (StrRef s : {r.comm, r.cwd, r.root, r.exe, r.cgroup, r.cgroup_settings}) on_str(s);
  on_blob(r.groups);
  on_blob(r.auxv);
}
template <typename S, typename B>
void for_each_ref(const ThreadRecord &r, S &&on_str, B &&) { on_str(r.comm); }
template <typename S, typename B>
void for_each_ref(const VmaRecord &r, S &&on_str, B &&on_blob) {
  on_str(r.path);
  on_blob(r.build_id);
}
template <typename S, typename B>
void for_each_ref(const FdRecord &r, S &&on_str, B &&on_blob) {
  on_str(r.path);
  on_blob(r.content);
  on_blob(r.state);
}
template <typename S, typename B>
void for_each_ref(const PipeRecord &r, S &&, B &&on_blob) { on_blob(r.data); }
template <typename S, typename B>
void for_each_ref(const TreeRecord &r, S &&on_str, B &&) { on_str(r.comm); }
template <typename S, typename B>
void for_each_ref(const ParentRecord &r, S &&on_str, B &&) { on_str(r.path_hint); }
template <typename S, typename B>
void for_each_ref(const SeccompFilterRecord &r, S &&, B &&on_blob) { on_blob(r.program); }
template <typename S, typename B>
void for_each_ref(const StoredFileRecord &r, S &&on_str, B &&on_blob) {
  on_str(r.path);
  on_blob(r.content);
}
// Records without references.
template <typename S, typename B> void for_each_ref(const PageRangeRecord &, S &&, B &&) {}
template <typename S, typename B> void for_each_ref(const SigActionRecord &, S &&, B &&) {}
template <typename S, typename B> void for_each_ref(const PendingSignalRecord &, S &&, B &&) {}
template <typename S, typename B> void for_each_ref(const TimerRecord &, S &&, B &&) {}
template <typename S, typename B> void for_each_ref(const RlimitRecord &, S &&, B &&) {}
template <typename S, typename B> void for_each_ref(const LockRecord &, S &&, B &&) {}
template <typename S, typename B> void for_each_ref(const GuardRangeRecord &, S &&, B &&) {}
template <typename S, typename B> void for_each_ref(const IpcNamespaceRecord &, S &&, B &&) {}
template <typename S, typename B> void for_each_ref(const CowPagesRecord &, S &&, B &&) {}
template <typename S, typename B>
void for_each_ref(const SysvIpcRecord &r, S &&, B &&on_blob) {
  on_blob(r.data);
}
template <typename S, typename B>
void for_each_ref(const DirtyTrackingRecord &r, S &&, B &&on_blob) {
  on_blob(r.armed);
}
template <typename S, typename B> void for_each_ref(const IntegrityRecord &, S &&, B &&) {}

}  // namespace ckpt::img
