// Dirty-page tracking between dumps, for `dump --parent` (issue #11):
// which pages a process wrote since the previous dump.
#pragma once

#include <vector>

#include <ckpt/img/records.h>

namespace ckpt::writer {

/// Page ranges written since tracking was (re-)armed, ascending, disjoint.
struct WrittenPages {
  struct Range {
    img::u64 start = 0, end = 0;
  };
  std::vector<Range> ranges;
  /// Whether [start, end) holds no written page.
  bool clean(img::u64 start, img::u64 end) const;
};

}  // namespace ckpt::writer
