// Cross-check: LLVM's libObject (ELFFile<ELF64LE>) sees the same program
// headers and notes in an image as ImageReader does.
//
// LLVM 14 does not implement PN_XNUM (support landed in Oct 2025, LLVM PRs
// #162288/#165278; llvm-readelf 14 reports 65535 program headers, issue
// #132216). So the full comparison runs on a normal image only; for a
// PN_XNUM image we check only what LLVM 14 can see: the first 0xffff
// program headers, which must still match ours. If a newer LLVM learns
// PN_XNUM, PnXnumPrefix below keeps passing (it compares a prefix).
//
// Built with -fno-rtti like Debian's LLVM 14.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <llvm/ADT/StringRef.h>
#include <llvm/Object/ELF.h>
#include <llvm/Support/Error.h>

#include <ckpt/img/reader.h>

#include "synthetic.h"

using namespace ckpt::img;
using ELFT = llvm::object::ELF64LE;

namespace {

std::string take_message(llvm::Error e) { return llvm::toString(std::move(e)); }

void compare_phdr(const Elf64_Phdr &a, const ELFT::Phdr &b, size_t i) {
  ASSERT_EQ(a.p_type, u32(b.p_type)) << i;
  ASSERT_EQ(a.p_flags, u32(b.p_flags)) << i;
  ASSERT_EQ(a.p_offset, u64(b.p_offset)) << i;
  ASSERT_EQ(a.p_vaddr, u64(b.p_vaddr)) << i;
  ASSERT_EQ(a.p_paddr, u64(b.p_paddr)) << i;
  ASSERT_EQ(a.p_filesz, u64(b.p_filesz)) << i;
  ASSERT_EQ(a.p_memsz, u64(b.p_memsz)) << i;
  ASSERT_EQ(a.p_align, u64(b.p_align)) << i;
}

/// One synthetic image, encoded and opened by ImageReader and by LLVM.
/// Views into `bytes`: not to be moved once opened.
struct OpenedBoth {
  std::vector<u8> bytes;
  std::optional<ImageReader> ours;
  std::optional<llvm::object::ELFFile<ELFT>> theirs;
  llvm::ArrayRef<ELFT::Phdr> phdrs;  ///< LLVM's program headers
};

void open_both(const ckpt::test::SyntheticImage &im, OpenedBoth &o) {
  o.bytes = ckpt::test::encode_image(im);
  ASSERT_FALSE(o.bytes.empty());
  auto r = ImageReader::from_bytes(o.bytes);
  ASSERT_TRUE(r) << r.error().message();
  o.ours.emplace(std::move(*r));
  llvm::StringRef buf(reinterpret_cast<const char *>(o.bytes.data()), o.bytes.size());
  auto file = llvm::object::ELFFile<ELFT>::create(buf);
  ASSERT_TRUE(bool(file)) << take_message(file.takeError());
  o.theirs.emplace(std::move(*file));
  auto phdrs = o.theirs->program_headers();
  ASSERT_TRUE(bool(phdrs)) << take_message(phdrs.takeError());
  o.phdrs = *phdrs;
}

}  // namespace

TEST(LlvmObject, SameHeadersAndNotes) {
  auto im = ckpt::test::make_synthetic_with_files();
  OpenedBoth both;
  ASSERT_NO_FATAL_FAILURE(open_both(im, both));
  const auto &r = both.ours;
  const auto &file = both.theirs;
  const auto *phdrs = &both.phdrs;
  EXPECT_EQ(file->getHeader().e_type, ET_CORE);
  ASSERT_EQ(phdrs->size(), r->phdrs().size());
  ASSERT_EQ(phdrs->size(), im.segments.size() + 2);
  for (size_t i = 0; i < phdrs->size(); i++) compare_phdr(r->phdrs()[i], (*phdrs)[i], i);

  // Notes, PT_NOTE by PT_NOTE, in order.
  struct Seen {
    std::string owner;
    u32 type;
    std::vector<u8> desc;
    u32 phdr;
  };
  std::vector<Seen> seen;
  for (size_t i = 0; i < phdrs->size(); i++) {
    const auto &ph = (*phdrs)[i];
    if (ph.p_type != PT_NOTE) continue;  // <elf.h> macro, same value as llvm::ELF::PT_NOTE
    llvm::Error err = llvm::Error::success();
    for (const auto &note : file->notes(ph, err)) {
      auto d = note.getDesc();
      seen.push_back({note.getName().str(), static_cast<u32>(note.getType()), std::vector<u8>(d.begin(), d.end()),
                      static_cast<u32>(i)});
    }
    ASSERT_FALSE(bool(err)) << "phdr " << i << ": " << take_message(std::move(err));
  }
  const auto &ours = r->notes();
  ASSERT_EQ(seen.size(), ours.size());
  ASSERT_GT(ours.size(), 10u);
  for (size_t i = 0; i < ours.size(); i++) {
    EXPECT_EQ(seen[i].owner, std::string(ours[i].owner)) << "note " << i;
    EXPECT_EQ(seen[i].type, ours[i].type) << "note " << i;
    EXPECT_EQ(seen[i].phdr, ours[i].phdr) << "note " << i;
    EXPECT_TRUE(seen[i].desc == std::vector<u8>(ours[i].desc.begin(), ours[i].desc.end())) << "note " << i;
  }
  // The last PT_NOTE, as LLVM sees it, holds exactly the integrity note.
  EXPECT_EQ(seen.back().owner, "CKPT");
  EXPECT_EQ(seen.back().type, static_cast<u32>(CkptNote::Integrity));
  EXPECT_EQ(seen.back().phdr, phdrs->size() - 1);
}

TEST(LlvmObject, PnXnumPrefix) {
  // See the comment at the top: LLVM 14 reads e_phnum literally.
  ckpt::test::SyntheticOptions o;
  o.extra_segments = 65540;
  auto im = ckpt::test::make_synthetic(o);
  OpenedBoth both;
  ASSERT_NO_FATAL_FAILURE(open_both(im, both));
  const auto &r = both.ours;
  const auto &file = both.theirs;
  const auto *phdrs = &both.phdrs;
  ASSERT_GE(phdrs->size(), size_t(0xffff));
  ASSERT_LE(phdrs->size(), r->phdrs().size());
  for (size_t i = 0; i < phdrs->size(); i++) compare_phdr(r->phdrs()[i], (*phdrs)[i], i);
  // PT_NOTE 0 is within what LLVM 14 sees: its notes must match ours.
  llvm::Error err = llvm::Error::success();
  size_t k = 0;
  for (const auto &note : file->notes((*phdrs)[0], err)) {
    ASSERT_LT(k, r->notes().size());
    const NoteRef &n = r->notes()[k++];
    ASSERT_EQ(n.phdr, 0u);
    EXPECT_EQ(note.getName().str(), std::string(n.owner));
    EXPECT_EQ(note.getType(), n.type);
    auto d = note.getDesc();
    EXPECT_TRUE(std::vector<u8>(d.begin(), d.end()) == std::vector<u8>(n.desc.begin(), n.desc.end()));
  }
  ASSERT_FALSE(bool(err)) << take_message(std::move(err));
  EXPECT_GT(k, 10u);
}
