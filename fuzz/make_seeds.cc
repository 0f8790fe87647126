// make_seeds OUTDIR: writes the seed corpora of the fuzz targets into
// OUTDIR/<target>/. Seeds are generated (not committed) so they always match
// the current format:
//
//   fuzz_image_reader, fuzz_imgtool_info, fuzz_llvm_diff: synthetic ckpt
//     images (1-4 threads, with a parent, without the marker, extra empty
//     PT_LOADs, a process tree with embedded cores and a zombie), a truncated
//     and a corrupted one, and hand-built gcore/kernel-like cores
//     (core_seeds.cc); fuzz_image_reader also gets a PN_XNUM image (too
//     large for -max_len, replayed whole by run-all.sh).
//   fuzz_tables: each CKPT table desc of the synthetic images, prefixed with
//     its selector byte, plus older/newer record sizes, a Tree table and an
//     Fds table per fd kind. An image with records of every note kind and
//     an fd of every fd kind (kind_seeds.h), and tables of zero-filled records
//     for every selector.
//   fuzz_nt_file: NT_FILE descs.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <elf.h>

#include <ckpt/img/note.h>
#include <ckpt/img/reader.h>
#include <ckpt/img/table.h>

#include <ckpt/img/fd_kinds.h>
#include <ckpt/img/model.h>

#include "fuzz_common.h"
#include "kind_seeds.h"
#include "seed_output.h"
#include "synthetic.h"

using namespace ckpt;
using namespace ckpt::img;
using fuzz::emit;
using fuzz::emit_image;

namespace {

std::string g_out;
int g_count = 0;

void mkdir_p(const std::string &dir) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "make_seeds: mkdir %s: %s\n", dir.c_str(), std::strerror(errno));
    std::exit(1);
  }
}

}  // namespace

void fuzz::emit(const char *target, const std::string &name, const std::vector<u8> &bytes) {
  std::string dir = g_out + "/" + target;
  mkdir_p(dir);
  std::string path = dir + "/" + name;
  if (!test::write_file(path, bytes)) {
    std::fprintf(stderr, "make_seeds: cannot write %s\n", path.c_str());
    std::exit(1);
  }
  g_count++;
}

void fuzz::emit_image(const std::string &name, const std::vector<u8> &bytes, bool llvm_too) {
  emit("fuzz_image_reader", name, bytes);
  emit("fuzz_imgtool_info", name, bytes);
  if (llvm_too) emit("fuzz_llvm_diff", name, bytes);
}

namespace {

// ---- Synthetic ckpt images ------------------------------------------------

std::vector<u8> synthetic(const test::SyntheticOptions &o) {
  auto bytes = test::encode_image(test::make_synthetic(o), o.ckpt_marker);
  if (bytes.empty()) {
    std::fprintf(stderr, "make_seeds: encoding a synthetic image failed\n");
    std::exit(1);
  }
  return bytes;
}

std::vector<u8> with_selector(CkptNote type, std::span<const u8> desc) {
  std::vector<u8> out;
  out.push_back(static_cast<u8>(fuzz::selector_of(type)));
  out.insert(out.end(), desc.begin(), desc.end());
  return out;
}

/// Every CKPT table note of an image, for fuzz_tables; NT_FILE for
/// fuzz_nt_file.
void table_seeds_from(const std::string &stem, const std::vector<u8> &bytes) {
  auto r = ImageReader::from_bytes(bytes);
  if (!r) {
    std::fprintf(stderr, "make_seeds: %s does not read back: %s\n", stem.c_str(), r.error().message().c_str());
    std::exit(1);
  }
  for (const NoteRef &n : r->notes()) {
    if (n.owner == kOwnerCkpt) {
      int sel = fuzz::selector_of(static_cast<CkptNote>(n.type));
      if (sel < 0) continue;
      emit("fuzz_tables", stem + "-" + std::to_string(sel), with_selector(static_cast<CkptNote>(n.type), n.desc));
    } else if (n.owner == kOwnerCore && n.type == kNtFile) {
      emit("fuzz_nt_file", stem, std::vector<u8>(n.desc.begin(), n.desc.end()));
    }
  }
}

/// A table desc whose records are `record_size` bytes: older writers
/// (shorter records) and newer ones (longer records, zero tail).
template <typename R>
std::vector<u8> resized_table(const TableBuilder<R> &b, u32 record_size) {
  std::vector<u8> full = b.encode();
  TableHeader h;
  std::memcpy(&h, full.data(), sizeof h);
  std::vector<u8> out(sizeof h);
  const u8 *recs = full.data() + sizeof h;
  for (u32 i = 0; i < h.record_count; i++) {
    size_t at = out.size();
    out.resize(at + record_size, 0);
    std::memcpy(out.data() + at, recs + size_t(i) * sizeof(R), std::min<size_t>(record_size, sizeof(R)));
  }
  out.insert(out.end(), recs + size_t(h.record_count) * sizeof(R), recs - sizeof h + full.size());
  h.record_size = record_size;
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

void synthetic_seeds() {
  struct Variant {
    const char *name;
    test::SyntheticOptions o;
  };
  std::vector<Variant> variants;
  for (int t = 1; t <= 4; t++) {
    test::SyntheticOptions o;
    o.threads = t;
    o.segments = t == 4 ? 1 : 2;
    variants.push_back({t == 1 ? "ckpt-1thread" : t == 2 ? "ckpt-2threads" : t == 3 ? "ckpt-3threads" : "ckpt-4threads", o});
  }
  {
    test::SyntheticOptions o;
    o.with_parent = true;
    o.threads = 2;
    variants.push_back({"ckpt-parent", o});
  }
  {
    test::SyntheticOptions o;
    o.ckpt_marker = false;
    o.threads = 1;
    variants.push_back({"ckpt-no-marker", o});
  }
  {
    test::SyntheticOptions o;
    o.threads = 1;
    o.segments = 1;
    o.extra_segments = 3;
    variants.push_back({"ckpt-extra-segments", o});
  }
  {
    test::SyntheticOptions o;
    o.threads = 1;
    o.segments = 0;
    variants.push_back({"ckpt-no-memory", o});
  }
  for (const Variant &v : variants) {
    std::vector<u8> b = synthetic(v.o);
    emit_image(v.name, b);
    table_seeds_from(v.name, b);
  }

  // Every note kind and every fd kind in one image that decodes.
  {
    test::SyntheticOptions o;
    o.threads = 2;
    o.segments = 2;
    test::SyntheticImage im = test::make_synthetic(o);
    fuzz::add_every_kind(im.notes, o.pid);
    std::vector<u8> b = test::encode_image(im, true);
    auto r = ImageReader::from_bytes(b);
    auto view = r ? decode_ckpt(*r) : Expected<CkptView>(r.error());
    if (!view) {
      std::fprintf(stderr, "make_seeds: the image of every kind does not decode: %s\n", view.error().message().c_str());
      std::exit(1);
    }
    emit_image("ckpt-every-kind", b);
    table_seeds_from("ckpt-every-kind", b);
    for (u32 t = 0; t < kFdTypeCount; t++)
      emit("fuzz_tables", std::string("fds-") + fd_kind_name(t),
           with_selector(CkptNote::Fds, fuzz::fd_kind_table(static_cast<FdType>(t), o.pid)));
  }

  test::SyntheticOptions small;
  small.threads = 1;
  small.segments = 1;
  std::vector<u8> b = synthetic(small);

  // Zero segments (FORMAT.md 5.2): PT_LOADs whose file bytes are the shared
  // zero block, with a ZeroBlock integrity record.
  {
    test::SyntheticOptions o = small;
    o.segments = 2;
    test::SyntheticImage im = test::make_synthetic(o);
    for (u64 k = 0; k < 2; k++) {
      u64 start = 0x10000000 + 0x100000 + k * 0x10000, len = 0x2000 * (k + 1);
      SegmentPlan z{start, len, len, PF_R | PF_W};
      z.zero = true;
      im.segments.push_back(z);  // after the synthetic segments, in address order
      VmaRecord v{};
      v.start = start;
      v.end = start + len;
      v.prot = 3;
      v.pid = o.pid;
      v.first_range = static_cast<u32>(im.notes.ranges.records.size());
      v.range_count = 1;
      im.notes.vmas.add(v);
      im.notes.ranges.add({start, len, static_cast<u32>(PageSource::Zero), 0});
    }
    std::vector<u8> zb = test::encode_image(im, true);
    if (zb.empty()) {
      std::fprintf(stderr, "make_seeds: encoding the zero-block image failed\n");
      std::exit(1);
    }
    emit_image("ckpt-zero-block", zb);
  }
  // Damaged: cut in the middle of the segment data, and a flipped byte in
  // the notes (checksum mismatch).
  emit_image("ckpt-truncated", std::vector<u8>(b.begin(), b.begin() + b.size() / 2));
  std::vector<u8> flipped = b;
  flipped[sizeof(Elf64_Ehdr) + 3 * sizeof(Elf64_Phdr) + 40] ^= 0x20;
  emit_image("ckpt-flipped", flipped);

  // PN_XNUM: 65536 program headers (3.5 MiB), more than -max_len; replayed
  // whole by run-all.sh. LLVM 14 cannot read it, so not for fuzz_llvm_diff.
  test::SyntheticOptions xnum;
  xnum.threads = 1;
  xnum.segments = 1;
  xnum.extra_segments = 65535;
  emit_image("ckpt-pn-xnum", synthetic(xnum), false);

  // A process tree: the root, two embedded cores and a zombie (§12.1).
  std::vector<u8> tree_image = test::encode_tree_image(test::make_synthetic_tree());
  if (tree_image.empty()) {
    std::fprintf(stderr, "make_seeds: encoding the tree image failed\n");
    std::exit(1);
  }
  emit_image("ckpt-tree", tree_image);

  // Tables the synthetic images lack or write only one way.
  auto im = test::make_synthetic(small);
  TableBuilder<TreeRecord> tree;
  tree.add({.pid = 5000, .ppid = 4242, .offset = 4096, .size = 8192});
  tree.add({.pid = 5001, .ppid = 5000, .offset = 16384, .size = 4096});
  emit("fuzz_tables", "tree", with_selector(CkptNote::Tree, tree.encode()));
  emit("fuzz_tables", "tasks-older", with_selector(CkptNote::Tasks, resized_table(im.notes.tasks, 200)));
  emit("fuzz_tables", "tasks-newer", with_selector(CkptNote::Tasks, resized_table(im.notes.tasks, 300)));
  emit("fuzz_tables", "vmas-newer", with_selector(CkptNote::Vmas, resized_table(im.notes.vmas, 112)));
  emit("fuzz_tables", "threads-min", with_selector(CkptNote::Threads, resized_table(im.notes.thread_records, 8)));
  TableBuilder<PipeRecord> empty;
  emit("fuzz_tables", "empty", with_selector(CkptNote::Pipes, empty.encode()));
  // A longer header (a future writer's): header_size 32.
  std::vector<u8> longhdr = im.notes.identity.encode();
  TableHeader h;
  std::memcpy(&h, longhdr.data(), sizeof h);
  h.header_size = 32;
  std::memcpy(longhdr.data(), &h, sizeof h);
  longhdr.insert(longhdr.begin() + sizeof h, 8, 0);
  emit("fuzz_tables", "identity-longer-header", with_selector(CkptNote::Identity, longhdr));
}

/// Every selector of fuzz_tables, from the registry: a table of one
/// zero-filled record and one of two, so a kind with no records in the
/// images above has seeds too.
void zero_record_seeds() {
  for (unsigned i = 0; i < fuzz::kRecordTypes; i++)
    fuzz::with_record_type(static_cast<u8>(i), [&]<typename R>() {
      TableBuilder<R> b;
      b.add(R{});
      emit("fuzz_tables", "zero1-" + std::to_string(i), with_selector(fuzz::kSelectorNote[i], b.encode()));
      b.add(R{});
      emit("fuzz_tables", "zero2-" + std::to_string(i), with_selector(fuzz::kSelectorNote[i], b.encode()));
    });
}

void nt_file_seeds() {
  emit("fuzz_nt_file", "empty", make_nt_file({}).desc);
  emit("fuzz_nt_file", "one", make_nt_file({{0x400000, 0x401000, 0, "/bin/true"}}).desc);
  emit("fuzz_nt_file", "three",
       make_nt_file({{0x400000, 0x401000, 0, "/usr/bin/a"},
                     {0x401000, 0x403000, 4096, "/usr/bin/a"},
                     {0x7f0000000000, 0x7f0000010000, 1 << 20, "/lib/x86_64-linux-gnu/libc.so.6 (deleted)"}})
           .desc);
  emit("fuzz_nt_file", "empty-name", make_nt_file({{0x1000, 0x2000, 0, ""}}).desc);
  // Page size 1: offsets in bytes.
  std::vector<u64> w = {1, 1, 0x1000, 0x2000, 123};
  std::vector<u8> d(w.size() * 8);
  std::memcpy(d.data(), w.data(), d.size());
  const char name[] = "/odd/offset";
  d.insert(d.end(), name, name + sizeof name);
  emit("fuzz_nt_file", "page-size-1", d);
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUTDIR\n");
    return 2;
  }
  g_out = argv[1];
  mkdir_p(g_out);
  fuzz::core_seeds();
  synthetic_seeds();
  nt_file_seeds();
  zero_record_seeds();
  std::printf("make_seeds: wrote %d seeds under %s\n", g_count, g_out.c_str());
  return 0;
}
