// Decoded views of an image's notes: what `imgtool info`, verify and restore
// consume. Decoding checks every cross reference (a thread's registers, a
// VMA's page ranges, a page range's segment) so consumers can index freely.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <vector>

#include <ckpt/img/note.h>
#include <ckpt/img/note_kinds.h>
#include <ckpt/img/reader.h>
#include <ckpt/img/table.h>

namespace ckpt::img {

/// One thread as the standard notes describe it.
struct CoreThread {
  PrStatus prstatus{};
  std::span<const u8> fpregs;   ///< NT_FPREGSET desc, empty if absent
  std::span<const u8> xstate;   ///< NT_X86_XSTATE desc, empty if absent
};

/// What any Linux x86-64 core says: the kernel's, gdb's, or ours.
struct CoreView {
  std::optional<PrPsInfo> psinfo;
  std::vector<CoreThread> threads;
  std::span<const u8> siginfo;
  std::vector<u64> auxv;             ///< flat (type, value) words
  std::vector<FileMapping> files;    ///< NT_FILE
};

/// Decodes the standard notes of the first PT_NOTE. Regset notes belong to
/// the PRSTATUS before them, as BFD and lldb read them.
Expected<CoreView> decode_core(const ImageReader &image);

/// The member type of one note kind in CkptView.
template <NoteCount C, typename R>
using NoteTable = std::conditional_t<C == NoteCount::OptionalOne, std::optional<Table<R>>, Table<R>>;

/// Every CKPT note of an image, decoded and cross-checked.
struct CkptView {
  IdentityRecord identity{};
  // One table per CKPT note kind (CKPT_NOTE_KINDS), e.g. `tasks`; an
  // optional one (the parent) is a std::optional.
#define CKPT_NOTE_VIEW(name, type, R, builder, view, scope, count, ...) NoteTable<NoteCount::count, R> view;
  CKPT_NOTE_KINDS(CKPT_NOTE_VIEW)
#undef CKPT_NOTE_VIEW
};

/// Receives what a decoder skips without failing (libObject's
/// WarningHandler): e.g. a CKPT note of a kind this libimg does not know.
using WarningHandler = std::function<void(const Error &)>;

/// Decodes the CKPT notes; fails on an image without an Identity note or
/// with any inconsistent record (e.g. a page range outside its segment).
/// A CKPT note of an unknown type (a newer writer's) is skipped, and
/// reported to `warn` if one is given.
Expected<CkptView> decode_ckpt(const ImageReader &image, const WarningHandler &warn = {});

/// The CKPT notes among `notes` (as ImageNotes::encode() makes them),
/// decoded and cross-checked as decode_ckpt() does, but for what needs the
/// image's program headers (where page ranges lie): the view a writer can
/// ask questions of before it writes. The view points into `notes`.
Expected<CkptView> decode_ckpt_notes(std::span<const Note> notes);

/// Where the bytes of a page range with source Image lie: their offset in
/// the file (for an embedded core of a tree image, in the whole file, not
/// in the core) and a view of them. `range` must come from decode_ckpt() of this
/// image (it checked that the range lies in its PT_LOAD's stored bytes).
/// The one place that turns a page range into a file offset.
struct StoredRange {
  u64 file_offset = 0;
  std::span<const u8> bytes;
};
StoredRange stored_range(const ImageReader &image, const PageRangeRecord &range);
/// The same for a range of source Image or Earlier (FORMAT.md §9.23: bytes
/// an earlier core of the same tree image stores, found through `view`'s
/// CowPages note; `file_offset` and `bytes` are then in the whole file).
/// Both `view` and `range` must come from decode_ckpt() of this image.
StoredRange stored_range(const ImageReader &image, const CkptView &view, const PageRangeRecord &range);
/// One process's core of a tree image, decoded.
struct TreeCore {
  const ImageReader *image = nullptr;
  const CkptView *view = nullptr;
};
/// The cross-core check of FORMAT.md §9.23 (decode_ckpt checks each core
/// alone): every CowPages record of cores[i] (cores[0] the root, then the
/// Tree's live processes in record order) names a process of cores[0..i)
/// whose Image range at `source_addr` stores its bytes at `file_offset`,
/// so the bytes restore reads are those the source's own checksum covers.
Status check_cow_sources(const std::vector<TreeCore> &cores);
/// Whether a range's bytes are stored in the file (source Image or Earlier),
/// so restore copies them from it.
inline bool stored_in_file(const PageRangeRecord &r) {
  return static_cast<PageSource>(r.source) == PageSource::Image || static_cast<PageSource>(r.source) == PageSource::Earlier;
}

}  // namespace ckpt::img
