#include <ckpt/img/writer.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <elf.h>

#include <ckpt/img/assert.h>
#include <ckpt/img/exec_form.h>
#include <ckpt/img/table.h>

#include "cow_pages.h"
#include "prefix_rule.h"
#include "wide_xxh3.h"
#include "zero_hash.h"

namespace ckpt::img {

// Writes are gathered into this much memory before a write(2), except that
// large segment data goes straight out.
static constexpr size_t kBufferSize = 1 << 20;

ImageWriter::~ImageWriter() {
  if (direct_fd_ >= 0) close(direct_fd_);
  XXH3_freeState(prefix_hash_);
  XXH3_freeState(seg_hash_);
}

// Kernel quirk (ext4 large folios, Linux 6.16+): a buffered write of len
// bytes fills page-cache folios of up to len's order, and on the project
// VM (PVM with free page reporting) folios of 512 KiB and more come from
// memory the host has taken back, whose first touch costs about 8x a
// small folio's: writing 1 GiB into the page cache took 2.2-2.5 s of
// system time in 8 MiB pwrites and 0.24-0.30 s in 64-256 KiB ones
// (bench/README.md, "Where a dump's CPU goes"). So a file gets its bytes
// in pwrites of at most this size; a pipe takes any length.
// VM quirk (virtio-balloon free page reporting, page_reporting_order 9):
// free blocks of 2 MiB and more are handed back to the host, and the first
// touch of such memory pays the host's fault inside the copy. A 256 KiB
// folio can only come from a free block of 256 KiB or more; once those run
// out (after 1-3 GiB here) the page cache splits reported 2 MiB blocks and
// each later GiB cost up to 8x the first, while 64 KiB folios fit the
// smaller free blocks the guest still holds. 256 KiB pieces are the
// cheaper while they last (a 1 GiB dump all in 64 KiB took 1.12x the
// wall clock), so the first GiB of the file goes in 256 KiB pwrites and
// the rest in 64 KiB ones (a 4 GiB dump: 0.5x; DECISIONS 243).
static constexpr size_t kFileWriteChunk = 256u << 10;
static constexpr size_t kFileWriteChunkLate = 64u << 10;
static constexpr u64 kLateFrom = 1ull << 30;  // file offset

// Writes len bytes at file offset `at` (a regular file) or at the stream's
// current end (a pipe): no seek backwards is ever needed.
// A signal that sets *cancel ends a write blocked on a full pipe (EINTR).
static Status put(int fd, bool positioned, const u8 *p, size_t len, u64 at, const std::atomic<bool> *cancel) {
  size_t done = 0;
  while (done < len) {
    size_t chunk = at + done < kLateFrom ? kFileWriteChunk : kFileWriteChunkLate;
    ssize_t n = positioned ? ::pwrite(fd, p + done, std::min(len - done, chunk), static_cast<off_t>(at + done))
                           : ::write(fd, p + done, len - done);
    if (n < 0 && errno == EINTR) {
      if (cancel && cancel->load()) return make_error("interrupted while writing at byte %llu", (unsigned long long)(at + done));
      continue;
    }
    if (n < 0) return make_error("write failed at byte %llu: %s", (unsigned long long)(at + done), strerror(errno));
    done += n;
  }
  return {};
}

Status ImageWriter::flush() {
  if (outer_) return {};  // an embedded core's bytes went to the root's buffer
  CKPT_TRY(put(fd_, seekable_, buffer_.data(), buffer_.size(), pos_ - buffer_.size(), options_.cancel));
  buffer_.clear();
  start_writeback();
  return {};
}

// Options::early_writeback, called when everything before pos_ has been
// handed to the kernel: every 32 MiB, start writeback of what is new and
// wait for the window before it (the pattern Linux's own write-heavy tools
// use). The disk then works while the dump goes on, the final fsync has at
// most two windows left, and dirty pages stay bounded instead of piling up
// until the kernel's dirty limit throttles us at an unpredictable moment.
// Advisory: errors are ignored here, fsync reports them.
void ImageWriter::start_writeback() {
  static constexpr u64 kWindow = 32ull << 20;
  if (!options_.early_writeback || !seekable_ || outer_) return;
  u64 end = pos_ & ~(kPageSize - 1);
  if (end < writeback_started_ + kWindow) return;
  sync_file_range(fd_, static_cast<off_t>(writeback_started_), static_cast<off_t>(end - writeback_started_),
                  SYNC_FILE_RANGE_WRITE);
  if (writeback_started_ > writeback_waited_)
    sync_file_range(fd_, static_cast<off_t>(writeback_waited_),
                    static_cast<off_t>(writeback_started_ - writeback_waited_),
                    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
  writeback_waited_ = writeback_started_;
  writeback_started_ = end;
}

Status ImageWriter::emit(std::span<const u8> bytes, bool hashed) {
  if (hashed) XXH3_64bits_update(prefix_hash_, bytes.data(), bytes.size());
  if (outer_) {
    // An embedded core: its own checksums, the root's file. Not the root's
    // Prefix: the core's own integrity note covers all of its bytes
    // (decision 199).
    CKPT_TRY(outer_->emit(bytes, false));
    pos_ += bytes.size();
    return {};
  }
  if (buffer_.size() + bytes.size() <= kBufferSize) {
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    pos_ += bytes.size();
    return {};
  }
  CKPT_TRY(flush());
  if (bytes.size() < kBufferSize) {
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
    pos_ += bytes.size();
    return {};
  }
  // Large page-aligned data bypasses the page cache when the file allows
  // O_DIRECT: filling fresh page-cache pages (and writing them back later)
  // costs more on this kind of VM than the disk write itself.
  bool aligned = pos_ % kPageSize == 0 && bytes.size() % kPageSize == 0 &&
                 reinterpret_cast<uintptr_t>(bytes.data()) % kPageSize == 0;
  if (direct_fd_ >= 0 && aligned) {
    Status s = put(direct_fd_, true, bytes.data(), bytes.size(), pos_, options_.cancel);
    if (s) {
      pos_ += bytes.size();
      return {};
    }
    close(direct_fd_);  // e.g. EINVAL from a filesystem that refuses it late
    direct_fd_ = -1;
  }
  CKPT_TRY(put(fd_, seekable_, bytes.data(), bytes.size(), pos_, options_.cancel));
  pos_ += bytes.size();
  start_writeback();
  return {};
}

// Advances the output by n zero bytes: on a file they are simply not
// written (a hole), on a stream they are.
Status ImageWriter::skip(u64 n) {
  if (!seekable_ || n < kPageSize) return emit_zeros(n);
  hash_zeros(prefix_hash_, n);
  if (outer_) {
    // Not in the root's Prefix: the core's own checksums cover it.
    PrefixPause pause(outer_->prefix_hash_);
    if (!pause.ok()) return make_error("out of memory for checksum state");
    CKPT_TRY(outer_->skip(n));
  } else {
    CKPT_TRY(flush());
  }
  pos_ += n;
  return {};
}

Status ImageWriter::emit_zeros(u64 n) {
  static const u8 zeros[kPageSize] = {};
  while (n) {
    u64 k = n < sizeof zeros ? n : sizeof zeros;
    CKPT_TRY(emit({zeros, static_cast<size_t>(k)}));
    n -= k;
  }
  return {};
}

Status ImageWriter::begin(int fd) {
  if (began_) return make_error("ImageWriter::begin called twice");
  began_ = true;
  fd_ = fd;
  struct stat st;
  // Skipping zeros leaves holes only in a file with nothing in it yet: over old
  // bytes (a reused, untruncated file) they must be written.
  seekable_ = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 && lseek(fd, 0, SEEK_CUR) == 0;
  if (seekable_ && options_.direct_io) {
    // A second description of the same file, for page-aligned bulk data.
    std::string self = "/proc/self/fd/" + std::to_string(fd);
    direct_fd_ = ::open(self.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  }
  buffer_.reserve(kBufferSize);
  return write_head();
}

Status ImageWriter::begin_nested(ImageWriter *outer) {
  if (began_) return make_error("embedded core begun twice");
  began_ = true;
  outer_ = outer;
  fd_ = outer->fd_;
  seekable_ = outer->seekable_;
  return write_head();
}

Expected<ImageWriter *> ImageWriter::begin_embedded(size_t i) {
  if (!began_ || outer_) return make_error("begin_embedded on a writer that has not begun or is embedded itself");
  if (i != embedded_next_ || i >= embedded_.size())
    return make_error("embedded core %zu begun out of order (next is %zu of %zu)", i, embedded_next_,
                      embedded_.size());
  if (seg_ < segments_.size()) return make_error("embedded core %zu begun before the root's segment data is complete", i);
  if (i > 0 && !embedded_[i - 1].finished_) return make_error("embedded core %zu begun before core %zu was finished", i, i - 1);
  CKPT_TRY(emit_zeros(layout_.embedded_offsets[i] - pos_));
  embedded_next_++;
  CKPT_TRY(embedded_[i].begin_nested(this));
  return &embedded_[i];
}

Status ImageWriter::write_head() {
  const ImageLayout &l = layout_;
  bool xnum = l.phnum >= kPnXnum;

  std::vector<u8> head(l.notes_offset);
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_ident[EI_OSABI] = ELFOSABI_NONE;
  if (options_.ckpt_marker) {
    std::memcpy(eh.e_ident + kIdentMarkerOffset, kIdentMarker, sizeof kIdentMarker);
    eh.e_ident[kIdentVersionOffset] = kFormatMajor;
  }
  eh.e_type = ET_CORE;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_phoff = l.phdr_offset;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = xnum ? kPnXnum : static_cast<u16>(l.phnum);
  if (xnum) {
    eh.e_shoff = l.shdr_offset;
    eh.e_shentsize = sizeof(Elf64_Shdr);
    eh.e_shnum = 1;
  }
  std::memcpy(head.data(), &eh, sizeof eh);

  std::vector<Elf64_Phdr> ph(l.phnum);
  ph[0] = Elf64_Phdr{PT_NOTE, 0, l.notes_offset, 0, 0, l.notes_size, 0, 4};
  for (size_t i = 0; i < segments_.size(); i++) {
    const SegmentPlan &s = segments_[i];
    ph[i + 1] = Elf64_Phdr{PT_LOAD, s.flags, l.segment_offsets[i], s.vaddr, 0, s.filesz, s.memsz, kPageSize};
  }
  ph.back() = Elf64_Phdr{PT_NOTE, 0, l.integrity_offset, 0, 0, l.integrity_size, 0, 4};
  std::memcpy(head.data() + l.phdr_offset, ph.data(), ph.size() * sizeof(Elf64_Phdr));
  checks_.push_back({static_cast<u32>(IntegrityKind::Headers), 0, 0, head.size(),
                     XXH3_64bits(head.data(), head.size())});
  if (!options_.exec_launcher.empty()) {
    // The exec form: its own head goes out, the core form's is what the
    // checksums cover (§12.3).
    auto parts = make_exec_form(std::span<const u8>(head).first(sizeof eh), l.total_size, options_.exec_launcher);
    if (!parts) return parts.error();
    XXH3_64bits_update(prefix_hash_, head.data(), kPhdrOffset);
    CKPT_TRY(emit(parts->head, false));
    CKPT_TRY(emit(std::span<const u8>(head).subspan(kPhdrOffset)));
    exec_launcher_ = std::move(parts->launcher);
    exec_launcher_offset_ = parts->launcher_offset;
  } else {
    CKPT_TRY(emit(head));
  }

  std::vector<u8> note_bytes;
  u64 at = l.notes_offset;
  for (size_t i = 0; i < notes_.size(); i++) {
    note_bytes.clear();
    notes_[i].encode_to(note_bytes);
    checks_.push_back({static_cast<u32>(IntegrityKind::Note), static_cast<u32>(i), at, note_bytes.size(),
                       XXH3_64bits(note_bytes.data(), note_bytes.size())});
    at += note_bytes.size();
    CKPT_TRY(emit(note_bytes));
  }
  CKPT_ASSERT(at == l.notes_offset + l.notes_size)
      << "notes end at " << at << ", planned " << l.notes_offset + l.notes_size;
  notes_.clear();  // desc bytes may be large (file contents); not needed any more
  if (l.zero_block_size) {
    CKPT_TRY(emit_zeros(l.zero_block_offset - pos_));
    CKPT_TRY(skip(l.zero_block_size));
    checks_.push_back({static_cast<u32>(IntegrityKind::ZeroBlock), 0, l.zero_block_offset, l.zero_block_size,
                       zeros_xxh3(l.zero_block_size)});
  }
  seg_ = 0;
  seg_done_ = 0;
  return advance_to_segment_data();
}

// Moves to the next segment that takes data, padding up to its offset.
Status ImageWriter::advance_to_segment_data() {
  while (seg_ < segments_.size() && (segments_[seg_].filesz == 0 || segments_[seg_].zero)) seg_++;
  if (seg_ < segments_.size()) {
    CKPT_TRY(emit_zeros(layout_.segment_offsets[seg_] - pos_));
    XXH3_64bits_reset(seg_hash_);
  }
  return {};
}

Status ImageWriter::write(std::span<const u8> bytes) {
  if (!began_) return make_error("ImageWriter::write before begin");
  while (!bytes.empty()) {
    if (seg_ >= segments_.size())
      return make_error("%zu bytes of segment data beyond the last planned segment", bytes.size());
    const SegmentPlan &s = segments_[seg_];
    u64 k = std::min<u64>(bytes.size(), s.filesz - seg_done_);
    // Segment data is hashed once, for its Segment record; the Prefix
    // leaves it out (format minor 7, decision 199). It is nearly all of
    // the bytes a dump hashes: on the CPU's widest vector unit (decision 214).
    xxh3_update_wide(seg_hash_, bytes.data(), k);
    CKPT_TRY(emit(bytes.first(k), false));
    bytes = bytes.subspan(k);
    seg_done_ += k;
    if (seg_done_ == s.filesz) {
      checks_.push_back({static_cast<u32>(IntegrityKind::Segment),
                         ImageLayout::phdr_index_of_segment(seg_), layout_.segment_offsets[seg_], s.filesz,
                         XXH3_64bits_digest(seg_hash_)});
      seg_++;
      seg_done_ = 0;
      CKPT_TRY(advance_to_segment_data());
    }
  }
  return {};
}

Status ImageWriter::write_zeros(u64 n) {
  if (!began_) return make_error("ImageWriter::write_zeros before begin");
  while (n) {
    if (seg_ >= segments_.size()) return make_error("%llu zero bytes beyond the last planned segment", (unsigned long long)n);
    const SegmentPlan &s = segments_[seg_];
    u64 k = std::min<u64>(n, s.filesz - seg_done_);
    hash_zeros(seg_hash_, k);
    {
      // A hole in segment data: its Segment record covers it, the Prefix
      // does not (format minor 7).
      PrefixPause pause(prefix_hash_);
      if (!pause.ok()) return make_error("out of memory for checksum state");
      CKPT_TRY(skip(k));
    }
    n -= k;
    seg_done_ += k;
    if (seg_done_ == s.filesz) {
      checks_.push_back({static_cast<u32>(IntegrityKind::Segment), ImageLayout::phdr_index_of_segment(seg_),
                         layout_.segment_offsets[seg_], s.filesz, XXH3_64bits_digest(seg_hash_)});
      seg_++;
      seg_done_ = 0;
      CKPT_TRY(advance_to_segment_data());
    }
  }
  return {};
}

Status ImageWriter::finish() {
  if (!began_) return make_error("ImageWriter::finish before begin");
  if (seg_ < segments_.size())
    return make_error("segment %zu at 0x%llx got %llu of its %llu bytes", seg_,
                      (unsigned long long)segments_[seg_].vaddr, (unsigned long long)seg_done_,
                      (unsigned long long)segments_[seg_].filesz);
  if (embedded_next_ != embedded_.size() || (!embedded_.empty() && !embedded_.back().finished_))
    return make_error("tree image finished before all %zu embedded cores were written", embedded_.size());
  const ImageLayout &l = layout_;
  if (!embedded_.empty()) {
    u64 end = l.embedded_offsets.back() + l.embedded_sizes.back();
    if (pos_ != end) return make_error("embedded cores end at %llu, planned %llu", (unsigned long long)pos_, (unsigned long long)end);
  }
  if (l.shdr_offset) {
    CKPT_TRY(emit_zeros(l.shdr_offset - pos_));
    Elf64_Shdr sh{};
    sh.sh_info = l.phnum;
    CKPT_TRY(emit({reinterpret_cast<const u8 *>(&sh), sizeof sh}));
  }
  CKPT_TRY(emit_zeros(l.integrity_offset - pos_));
  checks_.push_back({static_cast<u32>(IntegrityKind::Prefix), kPrefixOutsideCovered, 0, l.integrity_offset,
                     XXH3_64bits_digest(prefix_hash_)});

  // The SelfCheck record covers the note from its header to its own start.
  TableBuilder<IntegrityRecord> table;
  table.records = checks_;
  table.add({static_cast<u32>(IntegrityKind::SelfCheck), 0, l.integrity_offset, 0, 0});
  Note note = make_ckpt_note(CkptNote::Integrity, table.encode());
  std::vector<u8> bytes;
  note.encode_to(bytes);
  CKPT_ASSERT(bytes.size() == l.integrity_size) << "integrity note is " << bytes.size() << " bytes, planned "
                                                << l.integrity_size;
  u64 self_off = note.desc_offset() + sizeof(TableHeader) + checks_.size() * sizeof(IntegrityRecord);
  IntegrityRecord self{static_cast<u32>(IntegrityKind::SelfCheck), 0, l.integrity_offset, self_off,
                       XXH3_64bits(bytes.data(), self_off)};
  std::memcpy(bytes.data() + self_off, &self, sizeof self);
  CKPT_TRY(emit(bytes));
  CKPT_ASSERT(pos_ == l.total_size) << "wrote " << pos_ << " bytes, planned " << l.total_size;
  if (!exec_launcher_.empty()) {
    CKPT_TRY(emit_zeros(exec_launcher_offset_ - pos_));
    CKPT_TRY(emit(exec_launcher_, false));
  }
  CKPT_TRY(flush());
  finished_ = true;
  return {};
}

}  // namespace ckpt::img
