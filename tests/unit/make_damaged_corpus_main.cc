// Writes a handful of small damaged images into a directory: the seeds the
// fuzzers start from (committed under tests/corpus/damaged/).
// usage: make_damaged_corpus OUTDIR
// `cmake --build build --target damaged_corpus` regenerates them in place.
#include <cstdio>
#include <set>
#include <string>

#include <ckpt/img/reader.h>

#include "damaged_corpus.h"

using namespace ckpt::test;

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_damaged_corpus OUTDIR\n");
    return 2;
  }
  std::string dir = argv[1];
  CorpusOptions o = seed_corpus_options();

  // Where the notes are, to name the truncation and flip to keep.
  auto base = encode_image(corpus_base_image(o.base));
  auto r = ckpt::img::ImageReader::from_bytes(base);
  if (!r) {
    std::fprintf(stderr, "make_damaged_corpus: base image: %s\n", r.error().message().c_str());
    return 1;
  }
  unsigned long long notes = r->phdrs()[0].p_offset;
  const std::set<std::string> keep = {
      "truncated-at-" + std::to_string(notes + 12),
      // (with every_flip off, header and note bytes are flipped every 7th)
      "flipped-at-" + std::to_string((notes + 100) / 7 * 7) + "-xff",
      "absurd-e_phnum-65534",
      "absurd-note0-filesz-minus-4-resealed",
      "absurd-descsz-huge-CORE-3-resealed",
      "absurd-table2-count-huge-resealed",
      "absurd-ntfile-count-huge-resealed",
      "absurd-loads-overlap-resealed",
      "semantic-range-beyond-stored-bytes",
      "semantic-fpregset-before-prstatus",
      "absurd-tree-cores-overlap-resealed",
      "absurd-tree-embedded-byte-flipped-resealed",
  };
  std::set<std::string> written;
  bool ok = true;
  for_each_variant(o, [&](const Variant &v) {
    if (!keep.count(v.name)) return;
    std::string path = dir + "/" + v.name;
    if (!write_file(path, v.bytes)) {
      std::fprintf(stderr, "make_damaged_corpus: cannot write %s\n", path.c_str());
      ok = false;
    }
    written.insert(v.name);
  });
  for (const std::string &k : keep)
    if (!written.count(k)) {
      std::fprintf(stderr, "make_damaged_corpus: no variant named %s\n", k.c_str());
      ok = false;
    }
  std::printf("make_damaged_corpus: wrote %zu files to %s\n", written.size(), dir.c_str());
  return ok ? 0 : 1;
}
