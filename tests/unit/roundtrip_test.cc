// The round-trip image (roundtrip_fixture.h) as a file: its segments' bytes
// and the layout the writer promises, however it is written.
#include <fcntl.h>
#include <sys/stat.h>
#include <thread>

#include <ckpt/reader/validate.h>

#include "roundtrip_fixture.h"
#include "synthetic.h"

using namespace ckpt::img;
using namespace ckpt::img::roundtrip;

// ---- Memory ----------------------------------------------------------------

TEST_F(RoundTrip, SegmentBytes) {
  const auto &ph = reader_->phdrs();
  ASSERT_EQ(ph.size(), fixture_->segments.size() + 2);
  for (size_t i = 0; i < fixture_->segments.size(); i++) {
    const SegmentPlan &s = fixture_->segments[i];
    const Elf64_Phdr &p = ph[i + 1];
    EXPECT_EQ(p.p_type, u32(PT_LOAD));
    EXPECT_EQ(p.p_vaddr, s.vaddr);
    EXPECT_EQ(p.p_memsz, s.memsz);
    EXPECT_EQ(p.p_filesz, s.filesz);
    EXPECT_EQ(p.p_flags, s.flags);
    EXPECT_EQ(p.p_align, kPageSize);
    EXPECT_EQ(bytes_str(reader_->segment_bytes(i + 1)), bytes_str(fixture_->data[i])) << "segment " << i;
    if (s.filesz) {
      auto m = reader_->read_memory(s.vaddr, s.filesz);
      ASSERT_TRUE(m) << m.error().message();
      EXPECT_EQ(*m, fixture_->data[i]);
    }
    if (s.filesz < s.memsz) {
      EXPECT_FALSE(reader_->read_memory(s.vaddr + s.filesz, 1)) << "not stored: must fail";
    }
  }
  EXPECT_FALSE(reader_->read_memory(0x500000, 1)) << "unmapped address";
  // A read spanning two adjacent stored segments.
  auto m = reader_->read_memory(0x400ff0, 0x20);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(0, std::memcmp(m->data(), fixture_->data[0].data() + 0xff0, 0x10));
  EXPECT_EQ(0, std::memcmp(m->data() + 0x10, fixture_->data[1].data(), 0x10));
}

// ---- File layout -------------------------------------------------------------

TEST_F(RoundTrip, Layout) {
  const auto &ph = reader_->phdrs();
  const Elf64_Ehdr &eh = reader_->ehdr();
  EXPECT_EQ(eh.e_type, ET_CORE);
  EXPECT_EQ(eh.e_machine, EM_X86_64);
  EXPECT_EQ(eh.e_phoff, kPhdrOffset);  // 64..127 reserved for the exec form (FORMAT.md §12.3)
  EXPECT_EQ(eh.e_phnum, ph.size());
  EXPECT_EQ(eh.e_shnum, 0);
  EXPECT_EQ(eh.e_shoff, 0u);
  EXPECT_TRUE(reader_->has_ckpt_marker());
  EXPECT_EQ(reader_->format_major(), kFormatMajor);
  EXPECT_EQ(0, std::memcmp(eh.e_ident + kIdentMarkerOffset, "CKPT", 4));

  // PT_NOTE first, right after the program headers.
  ASSERT_GE(ph.size(), 2u);
  EXPECT_EQ(ph[0].p_type, u32(PT_NOTE));
  EXPECT_EQ(ph[0].p_offset, eh.e_phoff + ph.size() * sizeof(Elf64_Phdr));
  EXPECT_EQ(ph[0].p_vaddr, 0u);
  EXPECT_TRUE(ph[0].p_align == 0 || ph[0].p_align == 4) << ph[0].p_align;
  // The zero block (for zero segments) right after the notes' page.
  ASSERT_NE(layout_->zero_block_offset, 0u);
  EXPECT_EQ(layout_->zero_block_offset, (ph[0].p_offset + ph[0].p_filesz + kPageSize - 1) / kPageSize * kPageSize);
  EXPECT_EQ(layout_->zero_block_size, 0x3000u) << "the largest zero segment, page-rounded";
  // Loads sorted, page-aligned offsets, after the notes, in file order;
  // zero segments all read the zero block.
  u64 prev_vaddr = 0, prev_file_end = layout_->zero_block_offset + layout_->zero_block_size;
  for (size_t i = 1; i + 1 < ph.size(); i++) {
    EXPECT_EQ(ph[i].p_type, u32(PT_LOAD)) << i;
    EXPECT_GE(ph[i].p_vaddr, prev_vaddr) << i;
    prev_vaddr = ph[i].p_vaddr + ph[i].p_memsz;
    EXPECT_EQ(ph[i].p_offset % kPageSize, 0u) << i;
    if (fixture_->segments[i - 1].zero) {
      EXPECT_EQ(ph[i].p_offset, layout_->zero_block_offset) << i;
      EXPECT_EQ(ph[i].p_filesz, ph[i].p_memsz) << i;
    } else if (ph[i].p_filesz) {
      EXPECT_GE(ph[i].p_offset, prev_file_end) << i;
      prev_file_end = ph[i].p_offset + ph[i].p_filesz;
    }
  }
  for (u64 i = layout_->zero_block_offset; i < layout_->zero_block_offset + layout_->zero_block_size; i++)
    ASSERT_EQ((*bytes_)[i], 0) << i;
  // The last PT_NOTE holds only the Integrity note, and the file ends there.
  const Elf64_Phdr &last = ph.back();
  EXPECT_EQ(last.p_type, u32(PT_NOTE));
  EXPECT_GE(last.p_offset, prev_file_end);
  std::vector<const NoteRef *> in_last;
  for (const NoteRef &n : reader_->notes())
    if (n.phdr == ph.size() - 1) in_last.push_back(&n);
  ASSERT_EQ(in_last.size(), 1u);
  EXPECT_EQ(in_last[0]->owner, "CKPT");
  EXPECT_EQ(in_last[0]->type, static_cast<u32>(CkptNote::Integrity));
  EXPECT_EQ(in_last[0]->size, last.p_filesz);
  EXPECT_EQ(last.p_offset + last.p_filesz, bytes_->size());
  // Only two PT_NOTEs; the integrity note appears nowhere else.
  EXPECT_EQ(reader_->find_notes("CKPT", static_cast<u32>(CkptNote::Integrity)).size(), 1u);

  // The plan the writer announced is what it wrote.
  EXPECT_EQ(layout_->phnum, ph.size());
  EXPECT_EQ(layout_->phdr_offset, eh.e_phoff);
  EXPECT_EQ(layout_->notes_offset, ph[0].p_offset);
  EXPECT_EQ(layout_->notes_size, ph[0].p_filesz);
  ASSERT_EQ(layout_->segment_offsets.size(), fixture_->segments.size());
  for (size_t i = 0; i < fixture_->segments.size(); i++)
    EXPECT_EQ(layout_->segment_offsets[i], ph[ImageLayout::phdr_index_of_segment(i)].p_offset);
  EXPECT_EQ(layout_->shdr_offset, 0u);
  EXPECT_EQ(layout_->integrity_offset, last.p_offset);
  EXPECT_EQ(layout_->integrity_size, last.p_filesz);
  EXPECT_EQ(layout_->total_size, bytes_->size());
  // Padding between the notes and the first segment is zeros.
  for (u64 i = ph[0].p_offset + ph[0].p_filesz; i < ph[1].p_offset; i++) ASSERT_EQ((*bytes_)[i], 0) << i;
}

TEST_F(RoundTrip, ZerosBecomeHolesInRegularFiles) {
  // memfd is a regular (shmem) file: the zero block and write_zeros' run
  // are holes, not written blocks. SEEK_DATA from the start of a hole
  // lands past it.
  off_t zb = static_cast<off_t>(layout_->zero_block_offset);
  off_t data = lseek(memfd_, zb, SEEK_DATA);
  ASSERT_GE(data, 0) << strerror(errno);
  EXPECT_GE(data, zb + static_cast<off_t>(layout_->zero_block_size)) << "zero block was written, not skipped";
  const Elf64_Phdr *p6 = nullptr;
  for (const auto &ph : reader_->phdrs())
    if (ph.p_type == PT_LOAD && ph.p_vaddr == 0x7f0000500000) p6 = &ph;
  ASSERT_NE(p6, nullptr);
  off_t run = static_cast<off_t>(p6->p_offset + 0x1000);
  data = lseek(memfd_, run, SEEK_DATA);
  ASSERT_GE(data, 0);
  EXPECT_EQ(data, run + 0x2000) << "write_zeros' run was written, not skipped";
}

TEST_F(RoundTrip, ReusedFileWithOldContentStillVerifies) {
  // Writing over a regular file that already has bytes (no O_TRUNC, e.g. a
  // reused path): where the writer skips zeros, the old bytes must not show
  // through. After truncating to the image size, the image must verify.
  int fd = memfd_create("reused", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::vector<u8> junk(bytes_->size() + 8192, 0xa5);
  ASSERT_EQ(write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
  Status s = write_fixture(*fixture_, fd, 1 << 20);
  ASSERT_TRUE(s) << s.error().message();
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(bytes_->size())), 0);
  std::vector<u8> got = read_fd_all(fd);
  close(fd);
  auto r = ImageReader::from_bytes(got);
  ASSERT_TRUE(r) << r.error().message();
  Status v = verify_integrity(*r);
  EXPECT_TRUE(v) << v.error().message();
  EXPECT_TRUE(got == *bytes_) << "image differs from one written to an empty file";
}

TEST_F(RoundTrip, IntegrityVerifies) {
  Status s = verify_integrity(*reader_);
  EXPECT_TRUE(s) << s.error().message();
}

// The zero block is memory: the check a lazy restore makes (no
// check_memory) does not read it, as it does not read the segments; the
// full check finds a byte there that is not zero.
TEST_F(RoundTrip, ZeroBlockIsReadOnlyWithMemory) {
  ASSERT_NE(layout_->zero_block_offset, 0u);
  std::vector<u8> damaged = *bytes_;
  damaged[layout_->zero_block_offset + 100] = 1;
  auto r = ImageReader::from_bytes(damaged);
  ASSERT_TRUE(r) << r.error().message();
  Status without_memory = verify_integrity(*r, false);
  EXPECT_TRUE(without_memory) << without_memory.error().message();
  Status with_memory = verify_integrity(*r, true);
  ASSERT_FALSE(with_memory);
  EXPECT_NE(with_memory.error().message().find("zero block"), std::string::npos) << with_memory.error().message();
}

TEST_F(RoundTrip, OpenFromPathMatchesFromBytes) {
  std::string path = "/proc/self/fd/" + std::to_string(memfd_);
  auto r = ImageReader::open(path);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(bytes_str(r->bytes()), bytes_str(*bytes_));
  ASSERT_EQ(r->phdrs().size(), reader_->phdrs().size());
  EXPECT_EQ(0, std::memcmp(r->phdrs().data(), reader_->phdrs().data(), r->phdrs().size() * sizeof(Elf64_Phdr)));
  ASSERT_EQ(r->notes().size(), reader_->notes().size());
  for (size_t i = 0; i < r->notes().size(); i++) {
    EXPECT_EQ(r->notes()[i].offset, reader_->notes()[i].offset);
    EXPECT_EQ(r->notes()[i].type, reader_->notes()[i].type);
  }
  Status s = verify_integrity(*r);
  EXPECT_TRUE(s) << s.error().message();
  auto v = decode_ckpt(*r);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->rlimits.records.size(), 16u);
}

TEST_F(RoundTrip, WriterNeverSeeksPipe) {
  // The same image written into a pipe from another thread must be
  // byte-identical to the memfd one. A pipe cannot seek, so any lseek or
  // pwrite in the writer would fail (ESPIPE).
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  std::string writer_error;
  std::thread writer([&] {
    Status s = write_fixture(*fixture_, p[1], 77777);
    if (!s) writer_error = s.error().message();
    close(p[1]);
  });
  std::vector<u8> got;
  char buf[65536];
  for (;;) {
    ssize_t n = read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got.insert(got.end(), buf, buf + n);
  }
  writer.join();
  close(p[0]);
  EXPECT_EQ(writer_error, "");
  ASSERT_EQ(got.size(), bytes_->size());
  EXPECT_TRUE(got == *bytes_) << "pipe output differs from the memfd output";
  auto r = ImageReader::from_bytes(got);
  ASSERT_TRUE(r) << r.error().message();
  Status s = verify_integrity(*r);
  EXPECT_TRUE(s) << s.error().message();
}

TEST_F(RoundTrip, ChunkSizeDoesNotMatter) {
  for (size_t chunk : {size_t(1) << 30, size_t(4096), size_t(1)}) {
    if (chunk == 1) {
      // One byte at a time through the smallest segment only would be slow;
      // a fixture with small segments keeps it quick.
      Fixture f = make_fixture();
      f.segments.erase(f.segments.begin() + 3);
      f.data.erase(f.data.begin() + 3);
      f.notes.vmas.records.clear();
      f.notes.ranges.records.clear();
      int fd = memfd_create("chunk", MFD_CLOEXEC);
      ASSERT_GE(fd, 0);
      Status s = write_fixture(f, fd, 1);
      ASSERT_TRUE(s) << s.error().message();
      int fd2 = memfd_create("chunk2", MFD_CLOEXEC);
      s = write_fixture(f, fd2, 1 << 20);
      ASSERT_TRUE(s) << s.error().message();
      EXPECT_TRUE(read_fd_all(fd) == read_fd_all(fd2));
      close(fd);
      close(fd2);
      continue;
    }
    int fd = memfd_create("chunk", MFD_CLOEXEC);
    ASSERT_GE(fd, 0);
    Status s = write_fixture(*fixture_, fd, chunk);
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_TRUE(read_fd_all(fd) == *bytes_) << "chunk " << chunk;
    close(fd);
  }
}

TEST_F(RoundTrip, ValidatesAsARestorableImage) {
  // The fixture is deliberately odd (thread 2 has no FPREGSET), so use the
  // synthetic image for the whole-image validation.
  auto bytes = ckpt::test::encode_image(ckpt::test::make_synthetic());
  ASSERT_FALSE(bytes.empty());
  auto r = ImageReader::from_bytes(bytes);
  ASSERT_TRUE(r) << r.error().message();
  Status s = ckpt::reader::validate_one(*r);
  EXPECT_TRUE(s) << s.error().message();
  // ...and the fixture is refused for exactly that reason.
  Status f = ckpt::reader::validate_one(*reader_);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message().find("NT_FPREGSET"), std::string::npos) << f.error().message();
}
