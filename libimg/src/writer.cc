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
#include "zero_hash.h"

namespace ckpt::img {

static u64 align_up(u64 v, u64 a) { return (v + a - 1) & ~(a - 1); }


// Writes are gathered into this much memory before a write(2), except that
// large segment data goes straight out.
static constexpr size_t kBufferSize = 1 << 20;

static u64 integrity_desc_size(size_t notes, size_t loads_with_data, bool zero_block) {
  // Headers + one per note + [ZeroBlock] + one per stored segment + Prefix
  // + SelfCheck.
  return sizeof(TableHeader) + (notes + loads_with_data + 3 + zero_block) * sizeof(IntegrityRecord);
}

static const Note kIntegrityShape{kOwnerCkpt, static_cast<u32>(CkptNote::Integrity), {}};

Expected<ImageLayout> plan_layout(const std::vector<Note> &notes, const std::vector<SegmentPlan> &segments) {
  return plan_layout(notes, segments, {});
}

Expected<ImageLayout> plan_layout(const std::vector<Note> &notes, const std::vector<SegmentPlan> &segments,
                                  const std::vector<u64> &embedded_sizes) {
  ImageLayout l;
  u64 phnum = segments.size() + 2;
  if (phnum > UINT32_MAX) return make_error("%zu segments are more than ELF can count", segments.size());
  l.phnum = static_cast<u32>(phnum);
  l.phdr_offset = kPhdrOffset;  // 64..127 stay zero for the exec form (§12.3)
  l.notes_offset = l.phdr_offset + phnum * sizeof(Elf64_Phdr);
  for (const Note &n : notes) {
    if (n.desc.size() > UINT32_MAX) return make_error("note of type 0x%x is larger than 4 GiB", n.type);
    l.notes_size += n.encoded_size();
  }
  u64 pos = align_up(l.notes_offset + l.notes_size, kPageSize);
  for (const SegmentPlan &s : segments)
    if (s.zero) {
      if (s.filesz != s.memsz) return make_error("zero segment at 0x%llx has filesz != memsz", (unsigned long long)s.vaddr);
      l.zero_block_size = std::max(l.zero_block_size, align_up(s.filesz, kPageSize));
    }
  if (l.zero_block_size) {
    l.zero_block_offset = pos;
    pos += l.zero_block_size;
  }
  size_t stored = 0;
  u64 prev_end = 0;
  for (size_t i = 0; i < segments.size(); i++) {
    const SegmentPlan &s = segments[i];
    if (s.filesz > s.memsz)
      return make_error("segment %zu at 0x%llx has filesz %llu > memsz %llu", i, (unsigned long long)s.vaddr,
                        (unsigned long long)s.filesz, (unsigned long long)s.memsz);
    if (s.vaddr % kPageSize || s.memsz == 0)
      return make_error("segment %zu at 0x%llx is not a page-aligned, non-empty range", i, (unsigned long long)s.vaddr);
    if (s.vaddr + s.memsz < s.vaddr)
      return make_error("segment %zu at 0x%llx wraps around the address space", i, (unsigned long long)s.vaddr);
    if (i > 0 && s.vaddr < prev_end)
      return make_error("segment %zu at 0x%llx overlaps or precedes the segment before it", i,
                        (unsigned long long)s.vaddr);
    prev_end = s.vaddr + s.memsz;
    if (s.zero) {
      l.segment_offsets.push_back(l.zero_block_offset);
      continue;
    }
    l.segment_offsets.push_back(pos);
    if (s.filesz) {
      stored++;
      pos = align_up(pos + s.filesz, kPageSize);
    }
  }
  // Embedded cores of a tree image: after the last PT_LOAD data, each on
  // a page boundary of its own (§12.1).
  for (u64 size : embedded_sizes) {
    if (size < sizeof(Elf64_Ehdr)) return make_error("embedded core of %llu bytes is too small", (unsigned long long)size);
    pos = align_up(pos, kPageSize);
    l.embedded_offsets.push_back(pos);
    l.embedded_sizes.push_back(size);
    pos += size;
  }
  if (phnum >= kPnXnum) {
    l.shdr_offset = align_up(pos, 8);
    pos = l.shdr_offset + sizeof(Elf64_Shdr);
  }
  l.integrity_offset = align_up(pos, 4);
  Note shape = kIntegrityShape;
  shape.desc.resize(integrity_desc_size(notes.size(), stored, l.zero_block_size != 0));
  l.integrity_size = shape.encoded_size();
  l.total_size = l.integrity_offset + l.integrity_size;
  return l;
}

Expected<ImageWriter> ImageWriter::create(std::vector<Note> notes, std::vector<SegmentPlan> segments,
                                          Options options) {
  auto layout = plan_layout(notes, segments);
  if (!layout) return layout.error();
  ImageWriter w;
  w.notes_ = std::move(notes);
  w.segments_ = std::move(segments);
  w.options_ = options;
  w.layout_ = layout.take();
  w.prefix_hash_ = XXH3_createState();
  w.seg_hash_ = XXH3_createState();
  if (!w.prefix_hash_ || !w.seg_hash_) return make_error("out of memory for checksum state");
  XXH3_64bits_reset(w.prefix_hash_);
  return w;
}

Expected<ImageWriter> ImageWriter::create_tree(std::vector<Note> notes, std::vector<SegmentPlan> segments,
                                               std::vector<EmbeddedCorePlan> embedded, Options options) {
  std::vector<ImageWriter> parts;
  std::vector<u64> sizes;
  for (size_t i = 0; i < embedded.size(); i++) {
    Options part_options = options;
    part_options.direct_io = false;  // the root's output does the writing
    part_options.exec_launcher = {};  // the exec form is the whole file's, never an embedded core's (§12.3)
    auto part = create(std::move(embedded[i].notes), std::move(embedded[i].segments), part_options);
    if (!part) return part.error().context("embedded core " + std::to_string(i));
    for (const Note &n : part->notes_)
      if (n.owner == kOwnerCkpt && n.type == static_cast<u32>(CkptNote::Tree))
        return make_error("embedded core %zu has a Tree note of its own", i);
    sizes.push_back(part->layout_.total_size);
    parts.push_back(std::move(*part));
  }
  auto layout = plan_layout(notes, segments, sizes);
  if (!layout) return layout.error();
  // Fill in the Tree records' offset and size: only u64 fields of existing
  // records change, so the note keeps the size the layout was planned with.
  Note *tree = nullptr;
  for (Note &n : notes)
    if (n.owner == kOwnerCkpt && n.type == static_cast<u32>(CkptNote::Tree)) tree = &n;
  if (!tree) return make_error("a tree image needs a Tree note");
  auto raw = parse_table(tree->desc);
  if (!raw) return raw.error().context("tree note");
  if (raw->header.record_size < sizeof(TreeRecord))
    return make_error("tree note records of %u bytes are shorter than %zu", raw->header.record_size, sizeof(TreeRecord));
  size_t records_at = raw->records.data() - tree->desc.data();
  size_t part = 0;
  for (u32 i = 0; i < raw->header.record_count; i++) {
    u8 *rec = tree->desc.data() + records_at + size_t(i) * raw->header.record_size;
    TreeRecord r;
    std::memcpy(&r, rec, sizeof r);
    u64 offset = 0, size = 0;
    if (!(r.flags & kTreeZombie)) {
      if (part == parts.size()) return make_error("tree record %u (pid %d) has no embedded core planned", i, r.pid);
      offset = layout->embedded_offsets[part];
      size = layout->embedded_sizes[part];
      part++;
    }
    std::memcpy(rec + offsetof(TreeRecord, offset), &offset, 8);
    std::memcpy(rec + offsetof(TreeRecord, size), &size, 8);
  }
  if (part != parts.size())
    return make_error("%zu embedded cores planned but the tree note names %zu live processes", parts.size(), part);
  // Memory stored once (CowPages, §9.23): now that every core's place is
  // known, the references become file offsets.
  auto ident = decode_table<IdentityRecord>([&]() -> std::span<const u8> {
    for (const Note &n : notes)
      if (n.owner == kOwnerCkpt && n.type == static_cast<u32>(CkptNote::Identity)) return n.desc;
    return {};
  }());
  if (!ident || ident->records.empty()) return make_error("a tree image's root needs an Identity note");
  std::vector<PlannedCore> cores{{ident->records[0].root_pid, &segments, &*layout, 0, &notes}};
  part = 0;
  for (u32 i = 0; i < raw->header.record_count; i++) {
    TreeRecord r;
    std::memcpy(&r, tree->desc.data() + records_at + size_t(i) * raw->header.record_size, sizeof r);
    if (r.flags & kTreeZombie) continue;
    cores.push_back({r.pid, &parts[part].segments_, &parts[part].layout_, layout->embedded_offsets[part],
                     &parts[part].notes_});
    part++;
  }
  CKPT_TRY(resolve_cow_pages(cores));
  auto w = create(std::move(notes), std::move(segments), options);
  if (!w) return w.error();
  w->layout_ = layout.take();
  w->embedded_ = std::move(parts);
  return w;
}

ImageWriter::ImageWriter(ImageWriter &&o) noexcept
    : notes_(std::move(o.notes_)), segments_(std::move(o.segments_)), options_(o.options_),
      layout_(std::move(o.layout_)), fd_(o.fd_), pos_(o.pos_), seg_(o.seg_), seg_done_(o.seg_done_),
      buffer_(std::move(o.buffer_)), prefix_hash_(o.prefix_hash_), seg_hash_(o.seg_hash_),
      checks_(std::move(o.checks_)), began_(o.began_), seekable_(o.seekable_), direct_fd_(o.direct_fd_),
      writeback_started_(o.writeback_started_), writeback_waited_(o.writeback_waited_),
      exec_launcher_(std::move(o.exec_launcher_)), exec_launcher_offset_(o.exec_launcher_offset_),
      embedded_(std::move(o.embedded_)), embedded_next_(o.embedded_next_), outer_(o.outer_),
      finished_(o.finished_) {
  o.direct_fd_ = -1;
  o.prefix_hash_ = nullptr;
  o.seg_hash_ = nullptr;
}

ImageWriter::~ImageWriter() {
  if (direct_fd_ >= 0) close(direct_fd_);
  XXH3_freeState(prefix_hash_);
  XXH3_freeState(seg_hash_);
}

// Writes len bytes at file offset `at` (a regular file) or at the stream's
// current end (a pipe): no seek backwards is ever needed.
// A signal that sets *cancel ends a write blocked on a full pipe (EINTR).
static Status put(int fd, bool positioned, const u8 *p, size_t len, u64 at, const std::atomic<bool> *cancel) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = positioned ? ::pwrite(fd, p + done, len - done, static_cast<off_t>(at + done))
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
    // An embedded core: its own checksums, the root's file (and Prefix).
    CKPT_TRY(outer_->emit(bytes, hashed));
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
  if (outer_)
    CKPT_TRY(outer_->skip(n));
  else
    CKPT_TRY(flush());
  pos_ += n;
  return {};
}

Status ImageWriter::emit_zeros(u64 n) {
  static const u8 zeros[4096] = {};
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
    XXH3_64bits_update(seg_hash_, bytes.data(), k);
    CKPT_TRY(emit(bytes.first(k)));
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
    CKPT_TRY(skip(k));
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
  checks_.push_back({static_cast<u32>(IntegrityKind::Prefix), 0, 0, l.integrity_offset,
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
