// Synthetic images: complete ckpt images made by libimg alone, with fake
// threads, memory and state, for tests, fuzz seeds and benchmarks.
#pragma once

#include <string>
#include <vector>

#include <ckpt/img/image_notes.h>
#include <ckpt/img/writer.h>

namespace ckpt::test {

struct SyntheticOptions {
  int threads = 3;
  int pid = 4242;
  int segments = 4;               ///< anonymous 2-page mappings, plus a zero range each
  size_t extra_segments = 0;      ///< further empty PT_LOADs (to force PN_XNUM)
  bool with_parent = false;
  bool ckpt_marker = true;
};

struct SyntheticImage {
  img::ImageNotes notes;
  std::vector<img::SegmentPlan> segments;
  std::vector<std::vector<uint8_t>> segment_data;  ///< filesz bytes each
  std::vector<img::Note> extra_notes;              ///< after notes' own (e.g. of an unknown kind)
};

/// A consistent image description: every note type has records.
SyntheticImage make_synthetic(const SyntheticOptions &options = {});

/// make_synthetic() of 4 threads with an NT_FILE note naming two mapped
/// files (the executable at 0x10000000, a library at 0x10010000 from file
/// offset 0x3000): what the cross-checks against other ELF readers read.
SyntheticImage make_synthetic_with_files();

/// Encodes an image into bytes (through ImageWriter on a pipe-free memfd).
std::vector<uint8_t> encode_image(const SyntheticImage &image, bool ckpt_marker = true);
/// `notes` (in place of image.notes') and image's segments, written by
/// ImageWriter; empty on failure. For images whose notes were edited.
std::vector<uint8_t> encode_with_notes(std::vector<img::Note> notes, const SyntheticImage &image,
                                       bool ckpt_marker = true);

/// A process-tree image (FORMAT.md §12.1): the root (pid 4242, 3 threads),
/// its child 5000, a zombie child 5500 (exit status 7) and a grandchild
/// 6000 under 5000; 5000 and 6000 are embedded cores.
struct SyntheticTree {
  SyntheticImage root;                ///< its Tree note included
  std::vector<SyntheticImage> parts;  ///< the live further processes, in Tree order
};
SyntheticTree make_synthetic_tree();

/// Writes a tree image to fd (a regular file or a pipe) through
/// ImageWriter::create_tree; false on any failure.
bool write_tree_image(const SyntheticTree &tree, int fd);
/// The same into bytes (through a memfd).
std::vector<uint8_t> encode_tree_image(const SyntheticTree &tree);

/// Writes bytes to path (0600), returns false on failure.
bool write_file(const std::string &path, const std::vector<uint8_t> &bytes);
std::vector<uint8_t> read_file(const std::string &path);

/// Register value thread i of a synthetic image has in register slot r.
uint64_t synthetic_reg(int thread, int slot);

}  // namespace ckpt::test
