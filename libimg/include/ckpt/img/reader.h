// ImageReader: a checked, zero-copy view of an image (or any x86-64 ELF
// core) on top of elfutils' libelf. Every offset, size, count and alignment
// is checked before use; failures are Errors that name the byte offset and
// the index of what was wrong.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <elf.h>

#include <ckpt/img/exec_form.h>
#include <ckpt/img/expected.h>
#include <ckpt/img/format.h>
#include <ckpt/img/records.h>

namespace ckpt::img {

/// One note as found in a PT_NOTE.
struct NoteRef {
  std::string_view owner;
  u32 type = 0;
  std::span<const u8> desc;
  u64 offset = 0;        ///< file offset of the note header
  u64 size = 0;          ///< encoded size including padding
  u32 phdr = 0;          ///< index of the PT_NOTE holding it
  u32 index = 0;         ///< position among all notes of that PT_NOTE
};

class ImageReader {
 public:
  /// Maps and validates a file. The reader keeps the mapping open. A file
  /// in the exec form (§12.3) is seen in its core form: its private mapping
  /// has the core header at 0, and bytes() ends with the core image.
  /// `launcher` says whether the exec form's launcher bytes are hashed
  /// against the exec header's e_flags (§12.3); restore reads nothing of
  /// them and skips that (decision 190).
  static Expected<ImageReader> open(const std::string &path, LauncherCheck launcher = LauncherCheck::Checksum);
  /// Validates bytes in memory (copied). For fuzzing and tests.
  static Expected<ImageReader> from_bytes(std::span<const u8> bytes);

  /// The embedded core a Tree record of this (root) image names (§12.1),
  /// validated like any image: zero copy, sharing (and keeping alive) this
  /// reader's bytes, so every per-process decoder works on it unchanged.
  /// Fails for a zombie's record (no core), a range outside the file, or a
  /// core that is not a ckpt image or has a Tree note of its own. The
  /// bounds against the root's layout are check_tree_layout()'s.
  Expected<ImageReader> embedded(const TreeRecord &record) const;
  /// For long sequential passes over a mapped file (verify): start reading
  /// [offset, offset+len) of this view ahead (MADV_WILLNEED), and drop
  /// pages already passed from this process's mapping (MADV_DONTNEED; the
  /// page cache keeps them), so the resident set stays bounded however
  /// large the image. No-ops for a reader made from bytes.
  void will_need(u64 offset, u64 len) const;
  void forget_pages(u64 offset, u64 len) const;
  /// Offset of this view's first byte in the file it came from (0 for a
  /// whole file; a Tree record's offset for an embedded core).
  u64 base_offset() const { return base_offset_; }
  /// The whole file this view is part of, in its core form: bytes() for a
  /// whole file, the root image's for an embedded core (whose CowPages
  /// ranges refer to bytes of earlier cores, §9.23).
  std::span<const u8> file_bytes() const { return {data_ - base_offset_, file_size_}; }

  ImageReader(ImageReader &&) noexcept;
  ImageReader &operator=(ImageReader &&) noexcept;
  ~ImageReader();

  const Elf64_Ehdr &ehdr() const { return ehdr_; }
  const std::vector<Elf64_Phdr> &phdrs() const { return phdrs_; }
  const std::vector<NoteRef> &notes() const { return notes_; }
  std::span<const u8> bytes() const { return {data_, size_}; }

  /// Where the launcher is, when the file is in the exec form.
  const std::optional<ExecFormLayout> &exec_form() const { return exec_form_; }

  /// Has the ckpt marker in e_ident (a ckpt image, possibly damaged).
  bool has_ckpt_marker() const { return ckpt_marker_; }
  u8 format_major() const { return format_major_; }

  /// The file bytes of program header i; empty if i is out of range or
  /// its bytes do not lie inside the file.
  std::span<const u8> segment_bytes(size_t i) const;

  /// First note with this owner and type, or nullptr.
  const NoteRef *find_note(std::string_view owner, u32 type) const;
  std::vector<const NoteRef *> find_notes(std::string_view owner, u32 type) const;

  /// The note of owner CKPT and this type (first one).
  const NoteRef *find_ckpt(CkptNote type) const { return find_note(kOwnerCkpt, static_cast<u32>(type)); }

  /// Reads the bytes of a virtual address range out of PT_LOADs; fails if
  /// any byte is not stored in the file.
  Expected<std::vector<u8>> read_memory(u64 addr, u64 len) const;

 private:
  ImageReader() = default;
  Status parse(LauncherCheck launcher = LauncherCheck::Checksum);
  Status parse_notes(u32 phdr_index);
  void release();

  std::shared_ptr<u8> storage_;  // the mapping (or copy), shared with embedded views
  u8 *data_ = nullptr;
  size_t size_ = 0;      ///< of the core image; the exec form's launcher follows
  std::optional<ExecFormLayout> exec_form_;
  u64 base_offset_ = 0;
  size_t file_size_ = 0;  ///< of the whole file's core form (file_bytes())
  void *elf_ = nullptr;   // Elf*, kept opaque to spare users <libelf.h>
  Elf64_Ehdr ehdr_{};
  std::vector<Elf64_Phdr> phdrs_;
  std::vector<NoteRef> notes_;
  bool ckpt_marker_ = false;
  u8 format_major_ = 0;
  bool file_mapped_ = false;  // storage_ is a mapping of the file (open), not a copy
};

/// Checks the CKPT Integrity note against the file: every checksum, and that
/// the regions it lists are exactly the file's headers, notes and segments.
/// Fails with the first region whose bytes differ. With check_memory false
/// the PT_LOAD data, the zero block (the zero segments' bytes) and the
/// whole-file checksum that includes them are not read: headers, notes and
/// the integrity note still are (and that the zero block's recorded
/// checksum is the one of zeros).
/// That is what a lazy restore affords, whose cost must not grow with the
/// memory size; `imgtool verify` always checks everything.
/// A tree image is checked whole: the root's regions, then each embedded
/// core's own integrity note (an error names the process).
Status verify_integrity(const ImageReader &image, bool check_memory = true);

/// Hashes each of `regions` (records of `image`'s integrity note, offsets
/// in this view) now, a few MiB at a time; the pages of memory regions
/// (Segment, ZeroBlock) are dropped from the mapping after. The first
/// mismatch fails with verify's line, "checksum mismatch in segment 3
/// (bytes 4096..8192)"; restore's check of what its restorer does not
/// check while reading says the same.
Status check_regions(const ImageReader &image, const std::vector<IntegrityRecord> &regions);

/// The Tree records of a root image, or none. Checks what a reader must
/// before it follows one (FORMAT.md §13.5): zombies have offset = size = 0;
/// every embedded core is page-aligned, lies after the root's last PT_LOAD
/// data and before its PN_XNUM section header or integrity note, and the
/// cores are in ascending order without overlap. Process-level rules (pids,
/// parents before children) are decode_ckpt's.
Expected<std::vector<TreeRecord>> check_tree_layout(const ImageReader &image);

}  // namespace ckpt::img
