// fuzz_llvm_diff: differential check of ImageReader against LLVM libObject.
//
// Whenever ImageReader::from_bytes accepts an input that does not use
// PN_XNUM, llvm::object::ELFFile<ELF64LE> must accept it too, and both must
// see the same program headers and, for every PT_NOTE in order, the same
// notes (owner, type, desc bytes and where they are). Any difference traps.
//
// Known, deliberate differences that are excluded, each narrowly:
//
//  * PN_XNUM (e_phnum == 0xffff): LLVM 14 does not follow section header 0's
//    sh_info, so such inputs are skipped entirely.
//  * Owner names: LLVM's getName() always drops the last byte of the name
//    (assuming it is the NUL); ImageReader drops it only when it is a NUL.
//    The comparison reconstructs the n_namesz raw bytes from LLVM's view and
//    applies ImageReader's rule to them.
//  * PT_NOTE with p_align 8: LLVM 14 always pads notes to 4 bytes; LLVM 15
//    and later (and elfutils) pad them to 8 when p_align is 8, as ImageReader
//    means to. For those segments the notes are compared against a
//    transcription of LLVM >= 15's Elf_Note_Iterator_Impl with Align 8,
//    reading the headers through LLVM 14's Elf_Nhdr type (ref_walk8 below).
//  * LLVM reads headers in place through naturally aligned types; a PT_NOTE at
//    an odd file offset is read through misaligned pointers, which x86-64
//    tolerates. This target is built with -fno-sanitize=alignment so that
//    UBSan does not report LLVM's header code for it.
//  * ImageReader rejects much that LLVM accepts (not ET_CORE, not x86-64,
//    p_align of a PT_NOTE not in {0,1,4,8}, ...): only inputs ImageReader
//    accepts are compared.
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include <llvm/Object/ELF.h>
#include <llvm/Support/Error.h>

#include <ckpt/img/reader.h>

#include "fuzz_common.h"

using namespace ckpt;
using ckpt::img::ImageReader;
using ckpt::img::NoteRef;

namespace {

using ELFT = llvm::object::ELF64LE;
using Nhdr = llvm::object::Elf_Nhdr_Impl<ELFT>;

/// One note as a reference reader sees it.
struct RefNote {
  std::string_view owner;   // ImageReader's rule: the raw name minus a trailing NUL
  uint32_t type = 0;
  const uint8_t *desc = nullptr;
  size_t desc_size = 0;
  size_t header_offset = 0;  // in the file
};

std::string_view owner_from_raw(const char *name, size_t namesz) {
  if (namesz == 0) return {};
  if (name[namesz - 1] == '\0') namesz--;
  return {name, namesz};
}

/// LLVM >= 15's note walk for Align 8 (llvm/Object/ELFTypes.h):
///   getSize(Align) = alignTo(sizeof(Nhdr) + n_namesz, Align) + alignTo(n_descsz, Align)
///   getDesc(Align) = Nhdr + alignTo(sizeof(Nhdr) + n_namesz, Align), n_descsz bytes
/// and the iterator stops with an error when fewer than sizeof(Nhdr) bytes or
/// fewer than getSize() bytes remain.
bool ref_walk8(const uint8_t *file, size_t offset, size_t size, std::vector<RefNote> &out) {
  auto align8 = [](uint64_t v) { return (v + 7) & ~uint64_t(7); };
  size_t pos = 0;
  while (pos < size) {
    if (size - pos < sizeof(Nhdr)) return false;
    const Nhdr *h = reinterpret_cast<const Nhdr *>(file + offset + pos);
    uint64_t namesz = h->n_namesz, descsz = h->n_descsz;
    uint64_t desc_at = align8(sizeof(Nhdr) + namesz);
    uint64_t note_size = desc_at + align8(descsz);
    if (note_size > size - pos) return false;
    RefNote n;
    n.owner = owner_from_raw(reinterpret_cast<const char *>(h) + sizeof(Nhdr), namesz);
    n.type = h->n_type;
    n.desc = reinterpret_cast<const uint8_t *>(h) + desc_at;
    n.desc_size = descsz;
    n.header_offset = offset + pos;
    out.push_back(n);
    pos += note_size;
  }
  return true;
}

/// The notes of one PT_NOTE as LLVM 14 reads them.
bool llvm_walk(const llvm::object::ELFFile<ELFT> &elf, const ELFT::Phdr &ph, const uint8_t *file,
               std::vector<RefNote> &out) {
  llvm::Error err = llvm::Error::success();
  for (const auto &note : elf.notes(ph, err)) {
    RefNote n;
    llvm::StringRef name = note.getName();
    // getName() is n_namesz - 1 bytes right after the 12-byte header.
    size_t namesz = name.data() == nullptr ? 0 : name.size() + 1;
    const uint8_t *hdr;
    if (namesz) {
      hdr = reinterpret_cast<const uint8_t *>(name.data()) - sizeof(Nhdr);
    } else {
      // No name: find the header through the desc, or give up on its position.
      hdr = nullptr;
    }
    n.owner = owner_from_raw(name.data(), namesz);
    n.type = note.getType();
    llvm::ArrayRef<uint8_t> desc = note.getDesc();
    n.desc = desc.data();
    n.desc_size = desc.size();
    if (!hdr && !desc.empty()) hdr = desc.data() - sizeof(Nhdr);  // namesz 0: desc follows the header
    n.header_offset = hdr ? size_t(hdr - file) : SIZE_MAX;
    out.push_back(n);
  }
  if (err) {
    llvm::consumeError(std::move(err));
    return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auto image = ImageReader::from_bytes({data, size});
  if (!image) return 0;
  const Elf64_Ehdr &eh = image->ehdr();
  if (eh.e_phnum == ckpt::img::kPnXnum) return 0;  // LLVM 14 lacks PN_XNUM

  // The reader works on its own copy; LLVM reads the input in place. The
  // copy must be the same bytes.
  CKPT_FUZZ_CHECK(image->bytes().size() == size && std::memcmp(image->bytes().data(), data, size) == 0);

  auto elf = llvm::object::ELFFile<ELFT>::create(
      llvm::StringRef(reinterpret_cast<const char *>(data), size));
  if (!elf) {
    llvm::consumeError(elf.takeError());
    CKPT_FUZZ_CHECK(!"LLVM rejects an ELF header ImageReader accepts");
  }
  auto phdrs = elf->program_headers();
  if (!phdrs) {
    llvm::consumeError(phdrs.takeError());
    CKPT_FUZZ_CHECK(!"LLVM rejects program headers ImageReader accepts");
  }

  // Program headers: same count, same fields.
  const auto &ours = image->phdrs();
  CKPT_FUZZ_CHECK(ours.size() == phdrs->size());
  for (size_t i = 0; i < ours.size(); i++) {
    const auto &a = ours[i];
    const auto &b = (*phdrs)[i];
    CKPT_FUZZ_CHECK(a.p_type == b.p_type);
    CKPT_FUZZ_CHECK(a.p_flags == b.p_flags);
    CKPT_FUZZ_CHECK(a.p_offset == b.p_offset);
    CKPT_FUZZ_CHECK(a.p_vaddr == b.p_vaddr);
    CKPT_FUZZ_CHECK(a.p_paddr == b.p_paddr);
    CKPT_FUZZ_CHECK(a.p_filesz == b.p_filesz);
    CKPT_FUZZ_CHECK(a.p_memsz == b.p_memsz);
    CKPT_FUZZ_CHECK(a.p_align == b.p_align);
  }

  // Notes: every PT_NOTE in header order, the notes of each in file order.
  const auto &our_notes = image->notes();
  const uint8_t *our_base = image->bytes().data();
  size_t k = 0;
  for (size_t i = 0; i < phdrs->size(); i++) {
    const auto &ph = (*phdrs)[i];
    if (ph.p_type != PT_NOTE) continue;
    std::vector<RefNote> ref;
    bool ok = ph.p_align == 8 ? ref_walk8(data, ph.p_offset, ph.p_filesz, ref) : llvm_walk(*elf, ph, data, ref);
    CKPT_FUZZ_CHECK(ok);  // ImageReader accepted every note of this PT_NOTE
    for (const RefNote &r : ref) {
      CKPT_FUZZ_CHECK(k < our_notes.size());
      const NoteRef &n = our_notes[k++];
      CKPT_FUZZ_CHECK(n.phdr == i);
      CKPT_FUZZ_CHECK(n.owner == r.owner);
      CKPT_FUZZ_CHECK(n.type == r.type);
      CKPT_FUZZ_CHECK(n.desc.size() == r.desc_size);
      if (r.desc_size) {
        CKPT_FUZZ_CHECK(size_t(n.desc.data() - our_base) == size_t(r.desc - data));
        CKPT_FUZZ_CHECK(std::memcmp(n.desc.data(), r.desc, r.desc_size) == 0);
      }
      if (r.header_offset != SIZE_MAX) CKPT_FUZZ_CHECK(n.offset == r.header_offset);
    }
    // No further notes of ours in this PT_NOTE.
    CKPT_FUZZ_CHECK(k == our_notes.size() || our_notes[k].phdr != i);
  }
  CKPT_FUZZ_CHECK(k == our_notes.size());
  return 0;
}
