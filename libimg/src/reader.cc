#include <ckpt/img/reader.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt::img {

// A PT_NOTE larger than this is refused rather than walked.
static constexpr u64 kMaxNoteSegment = u64(1) << 32;

static bool add_overflows(u64 a, u64 b) { return a + b < a; }

Expected<ImageReader> ImageReader::open(const std::string &path, LauncherCheck launcher) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error("%s", strerror(errno));
  struct stat st;
  if (fstat(fd, &st) < 0) {
    int e = errno;
    ::close(fd);
    return make_error("%s", strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error("not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    return make_error("empty file");
  }
  // MAP_PRIVATE with PROT_WRITE: libelf may convert in place; the file is
  // never written.
  void *p = mmap(nullptr, st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) return make_error("mmap: %s", strerror(e));
  ImageReader r;
  size_t size = st.st_size;
  // The whole mapping is unmapped, launcher included, though size_ may end
  // with the core image (the exec form, §12.3).
  r.storage_ = std::shared_ptr<u8>(static_cast<u8 *>(p), [size](u8 *q) { munmap(q, size); });
  r.data_ = r.storage_.get();
  r.size_ = size;
  r.file_mapped_ = true;
  Status s = r.parse(launcher);
  if (!s) return s.error();
  return r;
}

Expected<ImageReader> ImageReader::from_bytes(std::span<const u8> bytes) {
  ImageReader r;
  r.size_ = bytes.size();
  u8 *copy = static_cast<u8 *>(std::malloc(bytes.empty() ? 1 : bytes.size()));
  if (!copy) return make_error("out of memory");
  r.storage_ = std::shared_ptr<u8>(copy, [](u8 *q) { std::free(q); });
  r.data_ = copy;
  if (!bytes.empty()) std::memcpy(r.data_, bytes.data(), bytes.size());
  Status s = r.parse();
  if (!s) return s.error();
  return r;
}

ImageReader::ImageReader(ImageReader &&o) noexcept { *this = std::move(o); }

ImageReader &ImageReader::operator=(ImageReader &&o) noexcept {
  if (this != &o) {
    release();
    storage_ = std::move(o.storage_);
    data_ = o.data_;
    size_ = o.size_;
    exec_form_ = o.exec_form_;
    base_offset_ = o.base_offset_;
    file_size_ = o.file_size_;
    elf_ = o.elf_;
    ehdr_ = o.ehdr_;
    phdrs_ = std::move(o.phdrs_);
    notes_ = std::move(o.notes_);
    ckpt_marker_ = o.ckpt_marker_;
    format_major_ = o.format_major_;
    file_mapped_ = o.file_mapped_;
    o.data_ = nullptr;
    o.elf_ = nullptr;
    o.size_ = 0;
    o.file_size_ = 0;
  }
  return *this;
}

ImageReader::~ImageReader() { release(); }

// The page-aligned part of [offset, offset+len) of this view, inward
// (forget) or outward (will_need).
static void advise_range(const u8 *data, u64 size, u64 offset, u64 len, int advice, bool inward) {
  if (offset >= size) return;
  len = std::min(len, size - offset);
  uintptr_t a = reinterpret_cast<uintptr_t>(data) + offset, b = a + len;
  a = inward ? (a + kPageSize - 1) & ~uintptr_t(kPageSize - 1) : a & ~uintptr_t(kPageSize - 1);
  b = inward ? b & ~uintptr_t(kPageSize - 1) : (b + kPageSize - 1) & ~uintptr_t(kPageSize - 1);
  if (a < b) madvise(reinterpret_cast<void *>(a), b - a, advice);
}

void ImageReader::will_need(u64 offset, u64 len) const {
  if (file_mapped_) advise_range(data_, size_, offset, len, MADV_WILLNEED, false);
}

void ImageReader::forget_pages(u64 offset, u64 len) const {
  // Only pages of the file never written through this private mapping are
  // dropped by callers (segment data), so nothing is lost: a later access
  // maps the page cache's page again.
  if (file_mapped_) advise_range(data_, size_, offset, len, MADV_DONTNEED, true);
}

void ImageReader::release() {
  if (elf_) elf_end(static_cast<Elf *>(elf_));
  elf_ = nullptr;
  storage_.reset();
  data_ = nullptr;
}

Expected<ImageReader> ImageReader::embedded(const TreeRecord &rec) const {
  if (rec.flags & kTreeZombie) return make_error("process %d is a zombie: it has no embedded core", rec.pid);
  if (rec.offset > size_ || rec.size > size_ - rec.offset || rec.size == 0)
    return make_error("process %d: embedded core at offset %llu, %llu bytes, lies outside the %zu-byte file", rec.pid,
                      (unsigned long long)rec.offset, (unsigned long long)rec.size, size_);
  if (rec.offset % kPageSize)
    return make_error("process %d: embedded core at offset %llu is not page-aligned", rec.pid,
                      (unsigned long long)rec.offset);
  // An embedded core is always in the core form: only the whole file's
  // first 128 bytes may be an exec head (§12.3).
  if (looks_like_exec_form({data_ + rec.offset, rec.size}))
    return make_error("process %d: embedded core at offset %llu is in the exec form", rec.pid,
                      (unsigned long long)rec.offset);
  ImageReader r;
  r.storage_ = storage_;
  r.data_ = data_ + rec.offset;
  r.file_mapped_ = file_mapped_;
  r.size_ = rec.size;
  r.base_offset_ = base_offset_ + rec.offset;
  r.file_size_ = file_size_;
  Status s = r.parse();
  if (!s) return s.error().context("process " + std::to_string(rec.pid) + " (embedded core at offset " +
                                   std::to_string(rec.offset) + ")");
  if (!r.has_ckpt_marker())
    return make_error("process %d: embedded core at offset %llu is not a ckpt image", rec.pid,
                      (unsigned long long)rec.offset);
  // The Tree is followed one level only (§13): no recursion on file data.
  if (r.find_ckpt(CkptNote::Tree))
    return make_error("process %d: embedded core at offset %llu has a Tree note of its own", rec.pid,
                      (unsigned long long)rec.offset);
  return r;
}

Status ImageReader::parse(LauncherCheck launcher) {
  // The exec form (§12.3) is read as its core form: its head is patched in
  // this reader's private copy and the launcher after the core is cut off.
  if (looks_like_exec_form({data_, size_})) {
    auto layout = check_exec_form({data_, size_}, launcher);
    if (!layout) return layout.error();
    exec_head_to_core_view(data_);
    exec_form_ = *layout;
    size_ = layout->core_size;
  }
  if (base_offset_ == 0) file_size_ = size_;
  // Our own checks come first: libelf clamps a program header count that
  // does not fit the file instead of failing, and we want to say where.
  if (size_ < sizeof(Elf64_Ehdr))
    return make_error("file of %zu bytes is too short for an ELF header", size_);
  std::memcpy(&ehdr_, data_, sizeof ehdr_);
  if (std::memcmp(ehdr_.e_ident, ELFMAG, SELFMAG) != 0) return make_error("not an ELF file");
  if (ehdr_.e_ident[EI_CLASS] != ELFCLASS64) return make_error("not a 64-bit ELF file");
  if (ehdr_.e_ident[EI_DATA] != ELFDATA2LSB) return make_error("not a little-endian ELF file");
  if (ehdr_.e_type != ET_CORE) return make_error("ELF type %u is not ET_CORE: not a core file", ehdr_.e_type);
  if (ehdr_.e_machine != EM_X86_64) return make_error("ELF machine %u is not x86-64", ehdr_.e_machine);
  if (ehdr_.e_phentsize != sizeof(Elf64_Phdr))
    return make_error("e_phentsize %u is not %zu", ehdr_.e_phentsize, sizeof(Elf64_Phdr));
  ckpt_marker_ = std::memcmp(ehdr_.e_ident + kIdentMarkerOffset, kIdentMarker, sizeof kIdentMarker) == 0;
  format_major_ = ckpt_marker_ ? ehdr_.e_ident[kIdentVersionOffset] : 0;
  if (ckpt_marker_ && format_major_ != kFormatMajor)
    return make_error("ckpt format version %u is not supported (this build reads version %u)", format_major_,
                      kFormatMajor);

  u64 phnum = ehdr_.e_phnum;
  if (phnum == kPnXnum) {
    if (ehdr_.e_shoff == 0 || ehdr_.e_shnum == 0)
      return make_error("e_phnum is PN_XNUM but there is no section header 0 to hold the count");
    if (ehdr_.e_shentsize != sizeof(Elf64_Shdr))
      return make_error("e_shentsize %u is not %zu", ehdr_.e_shentsize, sizeof(Elf64_Shdr));
    if (add_overflows(ehdr_.e_shoff, sizeof(Elf64_Shdr)) || ehdr_.e_shoff + sizeof(Elf64_Shdr) > size_)
      return make_error("section header 0 at offset %llu lies past the end of the %zu-byte file",
                        (unsigned long long)ehdr_.e_shoff, size_);
    Elf64_Shdr sh0;
    std::memcpy(&sh0, data_ + ehdr_.e_shoff, sizeof sh0);
    phnum = sh0.sh_info;
    if (phnum < kPnXnum)
      return make_error("PN_XNUM is used but section header 0 gives only %llu program headers",
                        (unsigned long long)phnum);
  }
  if (phnum == 0) return make_error("no program headers");
  if (ehdr_.e_phoff % 8) return make_error("e_phoff %llu is not 8-aligned", (unsigned long long)ehdr_.e_phoff);
  if (ehdr_.e_phoff > size_ || phnum > (size_ - ehdr_.e_phoff) / sizeof(Elf64_Phdr))
    return make_error("%llu program headers at offset %llu run past the end of the %zu-byte file",
                      (unsigned long long)phnum, (unsigned long long)ehdr_.e_phoff, size_);

  if (elf_version(EV_CURRENT) == EV_NONE) return make_error("libelf: %s", elf_errmsg(-1));
  Elf *elf = elf_memory(reinterpret_cast<char *>(data_), size_);
  if (!elf) return make_error("libelf: %s", elf_errmsg(-1));
  elf_ = elf;
  size_t n = 0;
  if (elf_getphdrnum(elf, &n) != 0) return make_error("libelf: %s", elf_errmsg(-1));
  if (n != phnum)
    return make_error("libelf counts %zu program headers where the header says %llu", n, (unsigned long long)phnum);
  phdrs_.resize(n);
  for (size_t i = 0; i < n; i++) {
    GElf_Phdr ph;
    if (!gelf_getphdr(elf, static_cast<int>(i), &ph))
      return make_error("program header %zu: libelf: %s", i, elf_errmsg(-1));
    phdrs_[i] = ph;
  }

  std::vector<std::pair<u64, u64>> loads;  // vaddr, end
  for (size_t i = 0; i < n; i++) {
    const Elf64_Phdr &ph = phdrs_[i];
    if (ph.p_type != PT_LOAD && ph.p_type != PT_NOTE) continue;
    if (add_overflows(ph.p_offset, ph.p_filesz) || ph.p_offset + ph.p_filesz > size_)
      return make_error("program header %zu: p_offset %llu + p_filesz %llu lies past the end of the %zu-byte file",
                        i, (unsigned long long)ph.p_offset, (unsigned long long)ph.p_filesz, size_);
    if (ph.p_type == PT_LOAD) {
      if (ph.p_filesz > ph.p_memsz)
        return make_error("program header %zu: p_filesz %llu exceeds p_memsz %llu", i,
                          (unsigned long long)ph.p_filesz, (unsigned long long)ph.p_memsz);
      if (add_overflows(ph.p_vaddr, ph.p_memsz))
        return make_error("program header %zu: p_vaddr 0x%llx + p_memsz wraps around", i,
                          (unsigned long long)ph.p_vaddr);
      if (ph.p_memsz) loads.push_back({ph.p_vaddr, ph.p_vaddr + ph.p_memsz});
      if (ckpt_marker_ && ph.p_offset % kPageSize)
        return make_error("program header %zu: p_offset %llu is not page-aligned", i,
                          (unsigned long long)ph.p_offset);
    }
  }
  std::vector<std::pair<u64, u64>> sorted = loads;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 1; i < sorted.size(); i++)
    if (sorted[i].first < sorted[i - 1].second)
      return make_error("PT_LOAD segments at 0x%llx and 0x%llx overlap", (unsigned long long)sorted[i - 1].first,
                        (unsigned long long)sorted[i].first);
  if (ckpt_marker_) {
    if (phdrs_[0].p_type != PT_NOTE) return make_error("program header 0 is not the PT_NOTE a ckpt image starts with");
    if (sorted != loads) return make_error("PT_LOAD segments are not in address order");
  }
  for (size_t i = 0; i < n; i++)
    if (phdrs_[i].p_type == PT_NOTE) CKPT_TRY(parse_notes(static_cast<u32>(i)));
  return {};
}

Status ImageReader::parse_notes(u32 pi) {
  const Elf64_Phdr &ph = phdrs_[pi];
  if (ph.p_filesz > kMaxNoteSegment)
    return make_error("program header %u: PT_NOTE of %llu bytes is too large", pi, (unsigned long long)ph.p_filesz);
  // p_align 8 means 8-byte note padding (as LLVM and elfutils read it).
  u64 align = ph.p_align == 8 ? 8 : 4;
  if (ph.p_align != 0 && ph.p_align != 1 && ph.p_align != 4 && ph.p_align != 8)
    return make_error("program header %u: PT_NOTE p_align %llu is not 0, 1, 4 or 8", pi,
                      (unsigned long long)ph.p_align);
  auto pad = [&](u64 v) { return (v + align - 1) & ~(align - 1); };
  const u8 *base = data_ + ph.p_offset;
  u64 pos = 0;
  u32 index = 0;
  while (pos < ph.p_filesz) {
    u64 at = ph.p_offset + pos;
    if (ph.p_filesz - pos < 12)
      return make_error("note %u at offset %llu: header runs past the end of its PT_NOTE", index,
                        (unsigned long long)at);
    u32 h[3];
    std::memcpy(h, base + pos, 12);
    u64 name_end = pad(12 + u64(h[0]));  // the desc starts aligned from the note header
    u64 desc_end = name_end + pad(h[1]);
    if (desc_end > ph.p_filesz - pos)
      return make_error("note %u at offset %llu: name of %u and desc of %u bytes run past the end of its PT_NOTE",
                        index, (unsigned long long)at, h[0], h[1]);
    NoteRef note;
    if (h[0] > 0) {
      const char *name = reinterpret_cast<const char *>(base + pos + 12);
      u32 len = h[0];
      if (name[len - 1] == '\0') len--;
      note.owner = std::string_view(name, len);
    }
    note.type = h[2];
    note.desc = std::span<const u8>(base + pos + name_end, h[1]);
    note.offset = at;
    note.size = desc_end;
    note.phdr = pi;
    note.index = index++;
    notes_.push_back(note);
    pos += desc_end;
  }
  return {};
}

std::span<const u8> ImageReader::segment_bytes(size_t i) const {
  // No bytes, rather than an exception or a span past the mapping, for an
  // index out of range or a header open() did not check (only PT_LOAD and
  // PT_NOTE must lie inside the file).
  if (i >= phdrs_.size()) return {};
  const Elf64_Phdr &ph = phdrs_[i];
  if (add_overflows(ph.p_offset, ph.p_filesz) || ph.p_offset + ph.p_filesz > size_) return {};
  return {data_ + ph.p_offset, static_cast<size_t>(ph.p_filesz)};
}

const NoteRef *ImageReader::find_note(std::string_view owner, u32 type) const {
  for (const NoteRef &n : notes_)
    if (n.type == type && n.owner == owner) return &n;
  return nullptr;
}

std::vector<const NoteRef *> ImageReader::find_notes(std::string_view owner, u32 type) const {
  std::vector<const NoteRef *> out;
  for (const NoteRef &n : notes_)
    if (n.type == type && n.owner == owner) out.push_back(&n);
  return out;
}

Expected<std::vector<u8>> ImageReader::read_memory(u64 addr, u64 len) const {
  if (len > (u64(1) << 30)) return make_error("refusing to read %llu bytes at once", (unsigned long long)len);
  // Check that every byte is stored before allocating for them.
  for (u64 a = addr, left = len; left;) {
    const Elf64_Phdr *seg = nullptr;
    for (const Elf64_Phdr &ph : phdrs_)
      if (ph.p_type == PT_LOAD && a >= ph.p_vaddr && a - ph.p_vaddr < ph.p_filesz) seg = &ph;
    if (!seg) return make_error("address 0x%llx is not stored in this file", (unsigned long long)a);
    u64 k = std::min(left, seg->p_filesz - (a - seg->p_vaddr));
    a += k;
    left -= k;
  }
  std::vector<u8> out(len);
  u64 done = 0;
  while (done < len) {
    u64 a = addr + done;
    const Elf64_Phdr *seg = nullptr;
    for (const Elf64_Phdr &ph : phdrs_)
      if (ph.p_type == PT_LOAD && a >= ph.p_vaddr && a - ph.p_vaddr < ph.p_memsz) seg = &ph;
    if (!seg) return make_error("address 0x%llx is in no PT_LOAD", (unsigned long long)a);
    u64 off = a - seg->p_vaddr;
    if (off >= seg->p_filesz) return make_error("address 0x%llx is not stored in this file", (unsigned long long)a);
    u64 k = std::min(len - done, seg->p_filesz - off);
    std::memcpy(out.data() + done, data_ + seg->p_offset + off, k);
    done += k;
  }
  return out;
}

}  // namespace ckpt::img
