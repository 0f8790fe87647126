// fuzz_nt_file: decode_nt_file on arbitrary bytes.
//
// Checked beyond "no crash": an accepted desc has room for the entries it
// claims, every entry is ordered (start <= end), and whenever its offsets are
// whole 4 KiB pages, make_nt_file (which always writes a 4 KiB page size)
// re-encodes it to something that decodes to the same entries.
#include <cstdint>
#include <cstring>
#include <span>

#include <ckpt/img/note.h>

#include "fuzz_common.h"

using namespace ckpt;
using namespace ckpt::img;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::span<const u8> desc(data, size);
  auto files = decode_nt_file(desc);
  if (!files) {
    CKPT_FUZZ_CHECK(!files.error().message().empty());
    return 0;
  }
  CKPT_FUZZ_CHECK(size >= 16);
  u64 count, page_size;
  std::memcpy(&count, data, 8);
  std::memcpy(&page_size, data + 8, 8);
  CKPT_FUZZ_CHECK(files->size() == count);
  CKPT_FUZZ_CHECK(count <= (size - 16) / 24);
  CKPT_FUZZ_CHECK(page_size && !(page_size & (page_size - 1)));
  bool whole_pages = true;
  size_t name_bytes = 0;
  for (const FileMapping &f : *files) {
    CKPT_FUZZ_CHECK(f.start <= f.end);
    CKPT_FUZZ_CHECK(f.offset % page_size == 0);
    CKPT_FUZZ_CHECK(f.path.find('\0') == std::string::npos);
    fuzz::touch(f.path);
    name_bytes += f.path.size() + 1;
    if (f.offset % kPageSize) whole_pages = false;
  }
  CKPT_FUZZ_CHECK(16 + count * 24 + name_bytes <= size);

  if (whole_pages) {
    Note n = make_nt_file(*files);
    CKPT_FUZZ_CHECK(n.owner == kOwnerCore && n.type == kNtFile);
    auto again = decode_nt_file(n.desc);
    CKPT_FUZZ_CHECK(bool(again));
    CKPT_FUZZ_CHECK(again->size() == files->size());
    for (size_t i = 0; i < files->size(); i++) {
      const FileMapping &a = (*files)[i], &b = (*again)[i];
      CKPT_FUZZ_CHECK(a.start == b.start && a.end == b.end && a.offset == b.offset && a.path == b.path);
    }
  }
  return 0;
}
