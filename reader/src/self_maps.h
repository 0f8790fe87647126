// This process's own mappings (/proc/self/maps), for placing the restorer.
#pragma once

#include <string>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/format.h>

namespace ckpt::reader {

struct SelfMapping {
  img::u64 start = 0, end = 0;
  std::string name;   ///< path or [name]; "" for anonymous
};

img::Expected<std::vector<SelfMapping>> read_self_maps();

}  // namespace ckpt::reader
