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
  uint64_t stored_pages = 0;   ///< 4 KiB pages of page ranges with source Image in this link
  uint64_t parent_pages = 0;   ///< ... with source Parent (taken from the next link)
};

struct ValidationReport {
  std::vector<ChainLink> chain;
};

/// Checks that `path` is a ckpt image whose structure, checksums and notes
/// are intact, and whose parent chain is present and intact: the file is
/// not damaged. Says nothing about whether it can be restored (see
/// check_restorable). The first problem found is the error; on success the
/// report lists the chain.
/// check_memory false skips the checksums of stored memory (see
/// img::verify_integrity), for a lazy restore.
img::Expected<ValidationReport> validate_image(const std::string &path, bool check_memory = true);

/// Checks one opened image (no chain): integrity, notes, thread registers.
Status validate_one(const img::ImageReader &image, img::CkptView *out_view = nullptr, bool check_memory = true);

/// Why an image cannot be restored.
enum class Obstacle {
  None,          ///< restorable here, now
  Damaged,       ///< the file or its parent chain is not intact
  Unsupported,   ///< it holds what restore cannot bring back (anywhere)
  NotHereNow,    ///< this machine, now: a pid in use, a file changed, ...
};

struct Restorability {
  Obstacle obstacle = Obstacle::None;
  /// One line, "" when restorable: the damage as validate_image says it,
  /// "not restorable: pid 123: fd 3 eventpoll, ...: not supported", or
  /// "not restorable here now: pid 123 is in use by another process".
  std::string message;
  ValidationReport report;   ///< the chain, whenever it is intact
  bool restorable() const { return obstacle == Obstacle::None; }
};

/// Options of restore that change what "here now" accepts.
struct HereNowOptions {
  /// restore --reopen-changed-files: an fd whose file was replaced or
  /// truncated since the dump is fine (it is reopened by path as it is now).
  bool reopen_changed_files = false;
  /// restore --pidns: the process comes back in a new pid namespace, where
  /// every pid is free; pids taken here do not matter.
  bool new_pid_namespace = false;
};

/// Every check restore makes before it starts anything, in its order:
/// validate_image, then img::unsupported_state (and kIdentityRestorable),
/// then this machine now (CPU, pids, files, vdso). restore, verify and
/// info all call this, so they give the same verdict and the same reason.
Restorability check_restorable(const std::string &path, bool check_memory = true, const HereNowOptions &options = {});

/// XSAVE features (XCR0) of this CPU.
uint64_t host_xsave_features();

/// Resolves a parent path hint as the contract says: relative to the
/// directory of the child image.
std::string resolve_parent_path(const std::string &child_path, const std::string &hint);

/// Hex form of a 16-byte image id.
std::string image_id_hex(const uint8_t (&id)[16]);

}  // namespace ckpt::reader
