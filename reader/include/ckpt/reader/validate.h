// Whole-image validation: what `imgtool verify` checks and what restore
// checks before it touches anything.
#pragma once

#include <string>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/model.h>

namespace ckpt::reader {

using img::Status;

/// One image of a parent chain, child first.
struct ChainLink {
  std::string path;
  std::string image_id;   ///< hex
};

struct ValidationReport {
  std::vector<ChainLink> chain;
};

/// Checks that `path` is a ckpt image whose structure, checksums and notes
/// are intact, whose parent chain is present and intact, and which this
/// machine can restore (CPU XSAVE features). The first problem found is the
/// error; on success the report lists the chain.
/// check_memory false skips the checksums of stored memory (see
/// img::verify_integrity), for a lazy restore.
img::Expected<ValidationReport> validate_image(const std::string &path, bool check_memory = true);

/// Checks one opened image (no chain): integrity, notes, thread registers.
Status validate_one(const img::ImageReader &image, img::CkptView *out_view = nullptr, bool check_memory = true);

/// XSAVE features (XCR0) of this CPU.
uint64_t host_xsave_features();

/// Resolves a parent path hint as the contract says: relative to the
/// directory of the child image.
std::string resolve_parent_path(const std::string &child_path, const std::string &hint);

/// Hex form of a 16-byte image id.
std::string image_id_hex(const uint8_t (&id)[16]);

}  // namespace ckpt::reader
