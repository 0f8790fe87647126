// Whether a file's bytes are in the page cache, sampled cheaply (issue 12:
// an eager restore from a cold page cache reads with two fillers,
// DECISIONS 257).
#pragma once

#include <utility>
#include <vector>

#include <ckpt/img/format.h>

namespace ckpt::reader {

/// Of `samples` pages spread evenly over the byte ranges (offset, length)
/// of the file open as fd, how many are in the page cache: {resident,
/// sampled}. {0, 0} when it cannot tell (the file cannot be mapped, or
/// the ranges are empty). Maps nothing it leaves behind and reads nothing.
std::pair<unsigned, unsigned> sample_page_cache(int fd, const std::vector<std::pair<img::u64, img::u64>> &ranges,
                                                unsigned samples);

}  // namespace ckpt::reader
