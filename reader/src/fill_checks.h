// Which of a core's segment checksums the restorer checks while it reads
// the bytes in, and which are checked before (decision 174). Eager restore
// reads the image once: a segment whose bytes the restorer's fills read
// whole, in file order and one fill right after the other, is hashed as it
// is read (map_memory.c, fill_checked); any other segment (memory imgtool
// puts into a shared object, the vdso, bytes read in some other order) is
// checked by the restoring child just before it jumps to the restorer.
// Both fail with the line `imgtool verify` gives for the same damage.
#pragma once

#include <string>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>
#include <ckpt/img/records.h>

#include "../restorer/abi.h"

namespace ckpt::reader {

struct FillChecks {
  std::vector<rs_check> checks;                 ///< for rs_args.check
  std::vector<img::u32> fill_check;             ///< per fill: 1 + index in checks, or 0
  std::vector<img::IntegrityRecord> before;     ///< the zero block and segments to check before the restorer (core offsets)
};

/// Splits the Segment records of `image`'s integrity note (a core of the
/// file: the root's or an embedded one) between the fills (in the order
/// the restorer runs them, file offsets in the whole file) and `before`,
/// which also gets the core's ZeroBlock record.
img::Expected<FillChecks> plan_fill_checks(const img::ImageReader &image, const rs_fill *fills, size_t nfill);

/// What verify's line for a damaged segment of this core starts with:
/// "" for the root, "process P (embedded core at offset O): " for a core
/// a tree image embeds (integrity.cc's context).
std::string checksum_context(const img::ImageReader &image, const img::CkptView &view);

/// Hashes `segments` (Segment or ZeroBlock records) of `image` now (a few MiB at a time, dropped from
/// the mapping after); the first mismatch fails with verify's line.
img::Status check_segments_now(const img::ImageReader &image, const img::CkptView &view,
                               const std::vector<img::IntegrityRecord> &segments);

}  // namespace ckpt::reader
