// The exec form of an image (FORMAT.md §12.3): deriving, checking and
// converting the 128 bytes at the head of the file and the launcher at its
// end. The core image between them never moves.
#include <ckpt/img/exec_form.h>
#include <ckpt/img/pending_file.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <xxhash.h>

#include <ckpt/img/reader.h>

namespace ckpt::img {

static u64 align_up(u64 v, u64 a) { return (v + a - 1) & ~(a - 1); }
static constexpr size_t kEhdr = sizeof(Elf64_Ehdr);
static constexpr size_t kHead = 2 * sizeof(Elf64_Ehdr);
static_assert(kSavedCoreHeaderOffset == kEhdr && kPhdrOffset == kHead);

static bool has_marker(const Elf64_Ehdr &h) {
  return std::memcmp(h.e_ident + kIdentMarkerOffset, kIdentMarker, sizeof kIdentMarker) == 0;
}

static bool is_elf64_x86(const Elf64_Ehdr &h) {
  return std::memcmp(h.e_ident, ELFMAG, SELFMAG) == 0 && h.e_ident[EI_CLASS] == ELFCLASS64 &&
         h.e_ident[EI_DATA] == ELFDATA2LSB && h.e_machine == EM_X86_64 && h.e_phentsize == sizeof(Elf64_Phdr);
}

bool looks_like_exec_form(std::span<const u8> head) {
  if (head.size() < kEhdr) return false;
  Elf64_Ehdr h;
  std::memcpy(&h, head.data(), kEhdr);
  return std::memcmp(h.e_ident, ELFMAG, SELFMAG) == 0 && has_marker(h) && h.e_type != ET_CORE;
}

// The exec header is the launcher's own ELF header with its program header
// table moved to where the launcher lies in the file, no section headers,
// the ckpt marker, and the low 32 bits of the launcher bytes' XXH3-64 in
// e_flags (which x86-64 defines no bits of; the kernel ignores it).
static Elf64_Ehdr derive_exec_header(const Elf64_Ehdr &launcher, u64 launcher_offset, u64 launcher_xxh3) {
  Elf64_Ehdr h = launcher;
  std::memcpy(h.e_ident + kIdentMarkerOffset, kIdentMarker, sizeof kIdentMarker);
  h.e_ident[kIdentVersionOffset] = kFormatMajor;
  h.e_ident[14] = h.e_ident[15] = 0;
  h.e_phoff += launcher_offset;
  h.e_shoff = 0;
  h.e_shnum = 0;
  h.e_shentsize = 0;
  h.e_shstrndx = 0;
  h.e_flags = static_cast<u32>(launcher_xxh3);
  return h;
}

// The core image's size from its header: the end of its last program
// header (the integrity PT_NOTE, which ends the core image).
static Expected<u64> core_size_of(const Elf64_Ehdr &core, std::span<const u8> file) {
  if (!is_elf64_x86(core) || core.e_type != ET_CORE || !has_marker(core))
    return make_error("the core ELF header saved at offset %llu is damaged", (unsigned long long)kEhdr);
  if (core.e_phoff != kPhdrOffset)
    return make_error("the saved core header puts program headers at %llu, not %llu",
                      (unsigned long long)core.e_phoff, (unsigned long long)kPhdrOffset);
  u64 phnum = core.e_phnum;
  if (phnum == kPnXnum) {
    if (core.e_shoff < kHead || core.e_shoff > file.size() || file.size() - core.e_shoff < sizeof(Elf64_Shdr))
      return make_error("the saved core header's section header 0 lies outside the file");
    Elf64_Shdr sh;
    std::memcpy(&sh, file.data() + core.e_shoff, sizeof sh);
    phnum = sh.sh_info;
  }
  if (phnum == 0 || phnum > (file.size() - kPhdrOffset) / sizeof(Elf64_Phdr))
    return make_error("%llu program headers of the core image do not fit the file", (unsigned long long)phnum);
  Elf64_Phdr last;
  std::memcpy(&last, file.data() + kPhdrOffset + (phnum - 1) * sizeof(Elf64_Phdr), sizeof last);
  if (last.p_offset > file.size() || last.p_filesz > file.size() - last.p_offset)
    return make_error("the core image's last program header runs past the end of the file");
  return last.p_offset + last.p_filesz;
}

// The launcher's headers, as the kernel will read them: a static-pie
// x86-64 ELF whose program headers lie in its first PT_LOAD (so that the
// kernel's AT_PHDR points at them, binfmt_elf's phdr_addr).
static Status check_launcher_headers(std::span<const u8> launcher, u64 shift, const char *where) {
  if (launcher.size() < kEhdr) return make_error("%s is too short for an ELF header", where);
  Elf64_Ehdr h;
  std::memcpy(&h, launcher.data(), kEhdr);
  if (!is_elf64_x86(h) || h.e_type != ET_DYN) return make_error("%s is not a static-pie x86-64 ELF", where);
  if (h.e_phnum == 0 || h.e_phoff > launcher.size() ||
      h.e_phnum > (launcher.size() - h.e_phoff) / sizeof(Elf64_Phdr))
    return make_error("%s has program headers outside itself", where);
  bool phdrs_loaded = false, first_load = true;
  for (u64 i = 0; i < h.e_phnum; i++) {
    Elf64_Phdr ph;
    std::memcpy(&ph, launcher.data() + h.e_phoff + i * sizeof ph, sizeof ph);
    if (ph.p_type == PT_INTERP) return make_error("%s needs a dynamic loader; it must be static", where);
    if (ph.p_filesz && (ph.p_offset < shift || ph.p_offset - shift > launcher.size() ||
                        ph.p_filesz > launcher.size() - (ph.p_offset - shift)))
      return make_error("%s: program header %llu lies outside it", where, (unsigned long long)i);
    if (ph.p_type == PT_LOAD && first_load) {
      first_load = false;
      phdrs_loaded = ph.p_offset == shift && h.e_phoff + h.e_phnum * sizeof(Elf64_Phdr) <= ph.p_filesz;
    }
  }
  if (!phdrs_loaded) return make_error("%s does not load its program headers with its first PT_LOAD", where);
  return {};
}

Expected<ExecFormLayout> check_exec_form(std::span<const u8> file, LauncherCheck check) {
  if (file.size() < kHead) return make_error("exec-form file of %zu bytes is too short", file.size());
  Elf64_Ehdr exec, core;
  std::memcpy(&exec, file.data(), kEhdr);
  std::memcpy(&core, file.data() + kEhdr, kEhdr);
  ExecFormLayout l;
  auto core_size = core_size_of(core, file);
  if (!core_size) return core_size.error();
  l.core_size = *core_size;
  l.launcher_offset = align_up(l.core_size, kPageSize);
  l.file_size = file.size();
  if (l.launcher_offset >= file.size())
    return make_error("exec-form file ends at %zu, before its launcher at offset %llu", file.size(),
                      (unsigned long long)l.launcher_offset);
  std::span<const u8> launcher = file.subspan(l.launcher_offset);
  char where[64];
  std::snprintf(where, sizeof where, "the launcher at offset %llu", (unsigned long long)l.launcher_offset);
  CKPT_TRY(check_launcher_headers(launcher, l.launcher_offset, where));
  Elf64_Ehdr own;
  std::memcpy(&own, launcher.data(), kEhdr);
  u64 launcher_xxh3 = check == LauncherCheck::Checksum ? XXH3_64bits(launcher.data(), launcher.size()) : exec.e_flags;
  Elf64_Ehdr want = derive_exec_header(own, l.launcher_offset, launcher_xxh3);
  if (std::memcmp(&want, &exec, kEhdr) != 0) {
    want.e_flags = exec.e_flags;
    if (std::memcmp(&want, &exec, kEhdr) == 0) return make_error("checksum mismatch in %s", where);
    return make_error("the exec ELF header at offset 0 is damaged (it does not match %s)", where);
  }
  return l;
}

void exec_head_to_core_view(u8 *head) {
  std::memmove(head, head + kEhdr, kEhdr);
  std::memset(head + kEhdr, 0, kEhdr);
}

Expected<ExecFormParts> make_exec_form(std::span<const u8> core_header, u64 core_size, std::span<const u8> launcher) {
  if (core_header.size() < kEhdr) return make_error("core header of %zu bytes", core_header.size());
  Elf64_Ehdr core;
  std::memcpy(&core, core_header.data(), kEhdr);
  if (core.e_phoff != kPhdrOffset)
    return make_error("the image keeps its program headers at offset %llu, where the exec form needs room for "
                      "its header (written before format 1.2)",
                      (unsigned long long)core.e_phoff);
  CKPT_TRY(check_launcher_headers(launcher, 0, "the launcher"));
  ExecFormParts p;
  p.launcher_offset = align_up(core_size, kPageSize);
  p.launcher.assign(launcher.begin(), launcher.end());
  Elf64_Ehdr own;
  std::memcpy(&own, launcher.data(), kEhdr);
  // The kernel reads the program headers at the exec header's e_phoff, in
  // the launcher's copy, and maps each segment from its p_offset: both move
  // by the launcher's place in the file. The launcher's own ELF header stays
  // as linked (__ehdr_start sees what the linker wrote).
  for (u64 i = 0; i < own.e_phnum; i++) {
    u8 *at = p.launcher.data() + own.e_phoff + i * sizeof(Elf64_Phdr);
    Elf64_Phdr ph;
    std::memcpy(&ph, at, sizeof ph);
    ph.p_offset += p.launcher_offset;
    std::memcpy(at, &ph, sizeof ph);
  }
  Elf64_Ehdr exec =
      derive_exec_header(own, p.launcher_offset, XXH3_64bits(p.launcher.data(), p.launcher.size()));
  p.head.resize(kHead);
  std::memcpy(p.head.data(), &exec, kEhdr);
  std::memcpy(p.head.data() + kEhdr, core_header.data(), kEhdr);
  return p;
}

// ---- convert ------------------------------------------------------------------

static Status pwrite_all(int fd, const u8 *p, size_t len, u64 at, const std::string &path) {
  while (len) {
    ssize_t n = ::pwrite(fd, p, len, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("%s: write at offset %llu: %s", path.c_str(), (unsigned long long)at, strerror(errno));
    p += n;
    len -= n;
    at += n;
  }
  return {};
}

// Turns the open file `fd`, whose first core_size bytes are the core image
// (in either form's head), into form `to`. The head goes last and in one
// write, so an interrupted conversion to exec leaves a valid core image.
static Status write_form(int fd, const std::string &path, ImageForm to, std::span<const u8> core_view_head,
                         u64 core_size, std::span<const u8> launcher) {
  struct stat st;
  if (fstat(fd, &st) < 0) return make_error("%s: %s", path.c_str(), strerror(errno));
  mode_t mode = st.st_mode & 07777;
  if (to == ImageForm::Exec) {
    auto parts = make_exec_form(core_view_head.first(kEhdr), core_size, launcher);
    if (!parts) return parts.error();
    CKPT_TRY(pwrite_all(fd, parts->launcher.data(), parts->launcher.size(), parts->launcher_offset, path));
    if (ftruncate(fd, static_cast<off_t>(parts->launcher_offset + parts->launcher.size())) < 0)
      return make_error("%s: ftruncate: %s", path.c_str(), strerror(errno));
    CKPT_TRY(pwrite_all(fd, parts->head.data(), kHead, 0, path));
    mode |= (mode & 0444) >> 2;  // executable by whoever may read it
  } else {
    CKPT_TRY(pwrite_all(fd, core_view_head.data(), kHead, 0, path));
    if (ftruncate(fd, static_cast<off_t>(core_size)) < 0)
      return make_error("%s: ftruncate: %s", path.c_str(), strerror(errno));
    mode &= ~mode_t(0111);
  }
  if (fchmod(fd, mode) < 0) return make_error("%s: chmod: %s", path.c_str(), strerror(errno));
  return {};
}

// Copies [at, end) of `from` to the same offsets of `to` with read and
// write: copy_file_range's fallback.
static Status copy_by_reading(int from, int to, loff_t at, u64 end, const std::string &out) {
  std::vector<u8> buf(std::min<u64>(end - at, 1u << 20));
  while (static_cast<u64>(at) < end) {
    ssize_t n = ::pread(from, buf.data(), std::min<u64>(buf.size(), end - at), at);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("%s: copy: read: %s", out.c_str(), strerror(errno));
    if (n == 0) return make_error("%s: copy: source ended early", out.c_str());
    CKPT_TRY(pwrite_all(to, buf.data(), static_cast<size_t>(n), static_cast<u64>(at), out));
    at += n;
  }
  return {};
}

// Copies the data extents of [0, len) (holes stay holes) with
// copy_file_range, which shares extents where the filesystem can (reflink).
// Where it cannot copy at all the rest goes by read and write (DECISIONS
// 275): since Linux 5.19 copy_file_range between two filesystems of
// different types (ext4 to the tmpfs of /dev/shm) fails with EXDEV
// instead of copying in the kernel (5.3-5.18 did); EOPNOTSUPP and EINVAL
// come from filesystems (and old kernels) that do not support the call
// for these files, ENOSYS from kernels before 4.5 or a seccomp filter.
static Status copy_extents(int from, int to, u64 len, const std::string &out) {
  if (ftruncate(to, static_cast<off_t>(len)) < 0) return make_error("%s: ftruncate: %s", out.c_str(), strerror(errno));
  off_t pos = 0;
  bool by_reading = false;
  while (static_cast<u64>(pos) < len) {
    off_t data = lseek(from, pos, SEEK_DATA);
    if (data < 0 || static_cast<u64>(data) >= len) break;  // ENXIO: only a hole is left
    off_t hole = lseek(from, data, SEEK_HOLE);
    u64 end = std::min<u64>(hole < 0 ? len : static_cast<u64>(hole), len);
    loff_t in_off = data, out_off = data;
    while (!by_reading && static_cast<u64>(in_off) < end) {
      ssize_t n = copy_file_range(from, &in_off, to, &out_off, end - in_off, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)) {
        by_reading = true;
        break;
      }
      if (n <= 0) return make_error("%s: copy: %s", out.c_str(), n < 0 ? strerror(errno) : "source ended early");
    }
    if (by_reading) CKPT_TRY(copy_by_reading(from, to, in_off, end, out));
    pos = static_cast<off_t>(end);
  }
  return {};
}

Expected<int> core_form_copy(const std::string &path, const std::string &dir) {
  std::vector<u8> head;
  u64 core_size = 0;
  {
    auto image = ImageReader::open(path);
    if (!image) return image.error();
    if (!image->exec_form()) return make_error("not in the exec form");
    head.assign(image->bytes().begin(), image->bytes().begin() + kHead);
    core_size = image->bytes().size();
  }
  int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return make_error("%s: %s", path.c_str(), strerror(errno));
  int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR, 0600);
  if (fd < 0) {
    ::close(in);
    return make_error("temporary file in %s: %s", dir.c_str(), strerror(errno));
  }
  Status s = copy_extents(in, fd, core_size, dir);
  ::close(in);
  if (s) s = pwrite_all(fd, head.data(), kHead, 0, dir);
  if (!s) {
    ::close(fd);
    return s.error();
  }
  return fd;
}

Expected<bool> convert_image(const std::string &path, const std::string &out, ImageForm to,
                             std::span<const u8> launcher) {
  std::vector<u8> head;
  u64 core_size = 0;
  ImageForm from;
  {
    auto image = ImageReader::open(path);
    if (!image) return image.error();
    if (!image->has_ckpt_marker()) return make_error("not a ckpt image (a foreign core cannot be converted)");
    // Headers and notes must be intact; memory is neither read nor moved.
    CKPT_TRY(verify_integrity(*image, false));
    head.assign(image->bytes().begin(), image->bytes().begin() + kHead);
    core_size = image->bytes().size();
    from = image->exec_form() ? ImageForm::Exec : ImageForm::Core;
  }
  if (out.empty()) {
    if (from == to) return false;
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return make_error("%s: %s", path.c_str(), strerror(errno));
    Status s = write_form(fd, path, to, head, core_size, launcher);
    if (s && fsync(fd) < 0) s = make_error("%s: fsync: %s", path.c_str(), strerror(errno));
    ::close(fd);
    if (!s) return s.error();
    return true;
  }
  // A symbolic link is not replaced (nor written through): dump's rule.
  CKPT_TRY(check_output_path(out));
  int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return make_error("%s: %s", path.c_str(), strerror(errno));
  // The output is unnamed until complete (pending_file.h): a killed
  // convert leaves nothing.
  auto pending = create_pending_file(out, true);
  if (!pending) {
    ::close(in);
    return pending.error();
  }
  int fd = pending->fd;
  Status s = copy_extents(in, fd, core_size, out);
  struct stat st;
  if (s && fstat(in, &st) == 0 && fchmod(fd, st.st_mode & 0777) < 0)
    s = make_error("%s: chmod: %s", out.c_str(), strerror(errno));
  ::close(in);
  if (s) s = write_form(fd, out, to, head, core_size, launcher);
  if (s && fsync(fd) < 0) s = make_error("%s: fsync: %s", out.c_str(), strerror(errno));
  if (s) s = link_into_place(*pending, out);
  discard_pending(*pending);
  if (!s) return s.error();
  return true;
}

}  // namespace ckpt::img
