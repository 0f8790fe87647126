// ImageWriter: streams an image to any file descriptor, seekable or not.
//
// Every header, note and offset is computed from the plan before the first
// byte goes out, so the writer never seeks; checksums that depend on data
// not yet seen go in a second PT_NOTE placed last, whose program header
// already carries its final size. File layout:
//
//   ELF header | program headers | PT_NOTE 0 (all notes) | pad to page
//   | [zero block] | PT_LOAD data, page-aligned, in address order
//   | [embedded cores of a tree image, each page-aligned]
//   | [section header 0 if PN_XNUM] | PT_NOTE (CKPT Integrity)
//
// A tree image (docs/FORMAT.md §12.1) embeds one complete core per further
// live process; each is written by an ImageWriter of its own whose bytes go
// through the root's, so every offset is still known before the first byte.
#pragma once

#include <atomic>
#include <span>
#include <vector>

#include <xxhash.h>

#include <ckpt/img/expected.h>
#include <ckpt/img/note.h>
#include <ckpt/img/records.h>

namespace ckpt::img {

/// One PT_LOAD as planned: filesz bytes of data will follow, filesz <= memsz.
struct SegmentPlan {
  u64 vaddr = 0;
  u64 memsz = 0;
  u64 filesz = 0;
  u32 flags = 0;        ///< PF_R | PF_W | PF_X
  /// The segment reads as zeros: its file bytes are the image's one shared
  /// zero block (filesz == memsz), so no data is written for it. Readers
  /// that honour only p_filesz (gdb, lldb, elfutils) still see zeros.
  bool zero = false;
};

/// File offsets of everything, derived from the plan alone.
struct ImageLayout {
  u32 phnum = 0;               ///< program headers including both PT_NOTEs
  u64 phdr_offset = 0;
  u64 notes_offset = 0;
  u64 notes_size = 0;
  u64 zero_block_offset = 0;   ///< page-aligned; 0 when no segment is zero
  u64 zero_block_size = 0;     ///< the largest zero segment, page-rounded
  std::vector<u64> segment_offsets;
  std::vector<u64> embedded_offsets;  ///< tree image: each embedded core's ELF header, page-aligned
  std::vector<u64> embedded_sizes;    ///< tree image: each embedded core's size
  u64 shdr_offset = 0;         ///< 0 unless PN_XNUM is needed
  u64 integrity_offset = 0;
  u64 integrity_size = 0;
  u64 total_size = 0;

  /// Program header index of planned segment i (PT_NOTE 0 comes first).
  static u32 phdr_index_of_segment(size_t i) { return static_cast<u32>(i + 1); }
};

/// Computes the layout, or fails on a plan that cannot be encoded (segments
/// out of address order or overlapping, filesz > memsz, address overflow).
Expected<ImageLayout> plan_layout(const std::vector<Note> &notes,
                                  const std::vector<SegmentPlan> &segments);
/// The same with embedded cores of these sizes placed after the PT_LOAD
/// data, each at the next page boundary (FORMAT.md §5.1, §12.1).
Expected<ImageLayout> plan_layout(const std::vector<Note> &notes, const std::vector<SegmentPlan> &segments,
                                  const std::vector<u64> &embedded_sizes);

/// One further process of a tree image: the notes and segments of its own
/// complete core (no Tree note of its own).
struct EmbeddedCorePlan {
  std::vector<Note> notes;
  std::vector<SegmentPlan> segments;
};

/// Writes one image. Usage: create, begin(), write() exactly each segment's
/// filesz bytes in order, finish().
class ImageWriter {
 public:
  /// e_ident[EI_PAD] marker and major version are always written; an image
  /// that is not a ckpt image (tests) can turn them off.
  struct Options {
    bool ckpt_marker = true;
    /// Write bulk segment data to a regular file with O_DIRECT (where the
    /// filesystem supports it), bypassing the page cache.
    bool direct_io = false;
    /// On a regular file, start writeback of the bytes written every few
    /// MiB (sync_file_range) and wait for the window before, so that a
    /// final fsync has little left to do and dirty pages stay bounded.
    bool early_writeback = false;
    /// When set (e.g. by a signal handler), a write interrupted by a
    /// signal fails instead of being retried.
    const std::atomic<bool> *cancel = nullptr;
    /// Non-empty: write the exec form (FORMAT.md §12.3) with this static-pie
    /// launcher appended; the integrity note still covers the core form.
    std::span<const u8> exec_launcher;
  };

  static Expected<ImageWriter> create(std::vector<Note> notes, std::vector<SegmentPlan> segments,
                                      Options options);
  static Expected<ImageWriter> create(std::vector<Note> notes, std::vector<SegmentPlan> segments) {
    return create(std::move(notes), std::move(segments), Options{});
  }
  /// A tree image. `notes` must hold a Tree note whose records without
  /// kTreeZombie name, in order, the processes of `embedded`; create fills
  /// in their `offset` and `size` (the note's size does not change).
  static Expected<ImageWriter> create_tree(std::vector<Note> notes, std::vector<SegmentPlan> segments,
                                           std::vector<EmbeddedCorePlan> embedded, Options options);
  ImageWriter(ImageWriter &&other) noexcept;
  ImageWriter &operator=(ImageWriter &&) = delete;
  ~ImageWriter();

  const ImageLayout &layout() const { return layout_; }

  /// Writes headers and notes to fd (not owned, not closed).
  Status begin(int fd);
  /// The next bytes of segment data; may span several segments. Zero
  /// segments are skipped: they take no data.
  Status write(std::span<const u8> bytes);
  /// The next n bytes of segment data are zeros. On a regular file they
  /// become a hole (no disk blocks); on a pipe they are written.
  Status write_zeros(u64 n);
  /// Pads the last segment, writes the trailer and the integrity note.
  /// In a tree image, every embedded core must be finished first.
  Status finish();
  /// Tree image: after all of the root's segment data, starts embedded core
  /// i (0, 1, ... in order) and returns its writer, which takes that core's
  /// segment data and must be finish()ed before the next one begins. It
  /// stays owned by this writer.
  Expected<ImageWriter *> begin_embedded(size_t i);
  size_t embedded_count() const { return embedded_.size(); }
  /// The plan of embedded core i (its own offsets, relative to its header).
  const ImageLayout &embedded_layout(size_t i) const { return embedded_[i].layout_; }
  /// Bytes written so far.
  u64 written() const { return pos_; }

 private:
  ImageWriter() = default;
  Status emit(std::span<const u8> bytes, bool hashed = true);
  Status emit_zeros(u64 n);
  Status flush();
  void start_writeback();
  Status advance_to_segment_data();
  Status skip(u64 n);
  Status begin_nested(ImageWriter *outer);
  Status write_head();

  std::vector<Note> notes_;
  std::vector<SegmentPlan> segments_;
  Options options_;
  ImageLayout layout_;
  int fd_ = -1;
  u64 pos_ = 0;
  size_t seg_ = 0;          // segment currently being filled
  u64 seg_done_ = 0;        // bytes of it written
  std::vector<u8> buffer_;
  XXH3_state_t *prefix_hash_ = nullptr;
  XXH3_state_t *seg_hash_ = nullptr;
  std::vector<IntegrityRecord> checks_;
  bool began_ = false;
  bool seekable_ = false;
  int direct_fd_ = -1;
  u64 writeback_started_ = 0;  // early_writeback: bytes [0, this) have been handed to writeback
  u64 writeback_waited_ = 0;   // and [0, this) waited for
  std::vector<u8> exec_launcher_;  // relocated launcher, written after the core image
  u64 exec_launcher_offset_ = 0;
  // Tree images: the embedded cores' writers, and for one of them the
  // writer its bytes go through (set by begin_embedded).
  std::vector<ImageWriter> embedded_;
  size_t embedded_next_ = 0;
  ImageWriter *outer_ = nullptr;
  bool finished_ = false;
};

}  // namespace ckpt::img
