// Checks of this machine, now, made before anything is started: what the
// image needs from here that it does not carry. What the image holds that
// restore cannot do at all is img::unsupported_state (libimg/restorable.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <ckpt/img/model.h>
#include <ckpt/reader/validate.h>

#include "tree_plan.h"

namespace ckpt::reader {

/// This CPU has the image's XSAVE features; the pids and tids are free;
/// every file a mapping depends on is still the same file (inode, size,
/// mtime, build-id); every file an fd names is still there and the same
/// (decision 24); the working directory exists; the vdso layout matches.
/// The image's vDSO has this kernel's entry points (vdso_check.h). A file
/// the image stores (dump --store-tmpfs-files) may be gone: restore
/// recreates it. Fails naming the first problem (without the "not
/// restorable here now" prefix: check_restorable adds it).
img::Status check_here_now(const img::ImageReader &image, const img::CkptView &view,
                           const HereNowOptions &options = {}, bool skip_file_checks = false);

/// The part of check_here_now that asks only the files and this kernel
/// (mapped files and their build-ids, the vdso), never the pids or
/// anything the restoring child could change: restore of one process makes
/// it while its child prepares (DECISIONS 268). Fails as check_restorable
/// would, "not restorable here now: ...". `recreated`: the stored files
/// restore made again since the preflight found them gone (stored_files.h);
/// they are the image's, not checked again.
img::Status check_files_and_vdso(const img::ImageReader &image, const img::CkptView &view,
                                 const std::vector<std::string> &recreated);

/// The restoring user may recreate processes with their original pids
/// (root, CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN); checked before anything
/// else, so that an unprivileged user hears that and not about a file
/// they cannot read. Also the message for clone3's EPERM.
img::Status check_restore_privilege();

/// "pid N is in use by another process (COMM)": the line for a pid (or
/// tid) that is taken here, naming its current owner from /proc.
std::string pid_taken_message(img::i32 pid, bool thread);
img::Error not_permitted_to_restore();

/// What the checks decoded, kept for the restore that follows so that the
/// image is decoded once (its notes, its embedded cores): view and core
/// once validated, tree once planned (a tree image).
struct DecodedImage {
  std::optional<img::CkptView> view;
  std::optional<img::CoreView> core;
  std::optional<TreePlan> tree;
  /// Set by check_restorable_opened when asked to and the image is of one
  /// process: check_files_and_vdso is left to the caller, to be made
  /// before the restored process can change anything (DECISIONS 268).
  bool file_checks_left = false;
};

/// validate_image from an image that is open already (its first link).
img::Expected<ValidationReport> validate_chain(const std::string &path, const img::ImageReader *first,
                                               bool check_memory, std::optional<img::CkptView> &first_view,
                                               std::optional<img::CoreView> &first_core);

/// check_restorable of `image`, open at `path`: the same checks in the
/// same order, and what they decoded is left in `decoded` (which must
/// not move afterwards: the tree plan refers to its view and core).
/// `leave_file_checks`: for one process, skip check_files_and_vdso and
/// set decoded.file_checks_left; the caller makes it.
Restorability check_restorable_opened(const std::string &path, const img::ImageReader &image, bool check_memory,
                                      const HereNowOptions &options, DecodedImage &decoded,
                                      bool leave_file_checks = false);

}  // namespace ckpt::reader
