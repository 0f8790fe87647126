// Writes a synthetic image to a file: a fixture for CLI tests and fuzz seeds.
// usage: make_synthetic OUT [--threads N] [--segments N] [--extra N] [--parent] [--no-marker]
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "synthetic.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_synthetic OUT [--threads N] [--segments N] [--extra N] [--parent] [--no-marker]\n");
    return 2;
  }
  ckpt::test::SyntheticOptions o;
  for (int i = 2; i < argc; i++) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) o.threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--segments") && i + 1 < argc) o.segments = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--extra") && i + 1 < argc) o.extra_segments = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--parent")) o.with_parent = true;
    else if (!std::strcmp(argv[i], "--no-marker")) o.ckpt_marker = false;
    else {
      std::fprintf(stderr, "make_synthetic: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  auto bytes = ckpt::test::encode_image(ckpt::test::make_synthetic(o), o.ckpt_marker);
  if (bytes.empty() || !ckpt::test::write_file(argv[1], bytes)) {
    std::fprintf(stderr, "make_synthetic: failed to write %s\n", argv[1]);
    return 1;
  }
  return 0;
}
