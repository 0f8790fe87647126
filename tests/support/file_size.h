// The size of a file, for tests that compare image sizes.
#pragma once

#include <string>

namespace ckpt::test {

long long file_size(const std::string &path);  ///< st_size, -1 if it cannot be stat'ed

}  // namespace ckpt::test
