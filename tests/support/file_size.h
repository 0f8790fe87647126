// A file's size, for tests that compare image sizes, and one of its bytes
// flipped, for tests that damage an image.
#pragma once

#include <string>

namespace ckpt::test {

long long file_size(const std::string &path);  ///< st_size, -1 if it cannot be stat'ed
/// Flips bit 0x40 of the byte at `offset` of the file, in place; false if
/// that byte cannot be read or written.
bool flip_byte(const std::string &path, long long offset);

}  // namespace ckpt::test
