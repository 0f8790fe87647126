// Whom an image file comes from (docs/SECURITY.md). An image is executable
// input: restoring it runs its code with the credentials it names. A
// privileged restore of a file that another user could have written (the
// file, or a folder on its path, owned by that user; or writable by others
// without sticky-bit protection) must not give that user more than they
// had: the image's ids must be theirs, it holds no capability and no
// securebits, and it maps no setuid/setgid/file-capability binary.
// `restore --trust-image` skips the check.
#pragma once

#include <string>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/model.h>

namespace ckpt::reader {

/// Refuses, with one line, a restore of `path` (the file as given) whose
/// processes `views` would give its possible writer more than they hold.
/// Succeeds at once when nobody but us (and root) could have written it.
img::Status check_image_trust(const std::string &path, const std::vector<const img::CkptView *> &views);

}  // namespace ckpt::reader
