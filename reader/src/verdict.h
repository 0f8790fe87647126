// imgtool's side of the verdict pipe: what the restoring child reports.
// The restorer writes RS_OK and an rs_handover (then EOF) once the process
// is set up and parked, a stage byte and an errno byte when it fails after
// the point of no return; the C++ side of the child writes a line before
// it (become_image_or_report). EOF with nothing means the child died.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>

#include <ckpt/img/expected.h>

#include "../restorer/abi.h"

namespace ckpt::reader {

/// Everything written to the verdict pipe `fd` until EOF (not closed).
std::string read_verdict(int fd);

/// The line of a verdict that says the image is damaged (RS_CHECKSUM: a
/// segment checksum the restorer or the child checked did not match), as
/// `imgtool verify` words it; otherwise nothing.
std::optional<std::string> checksum_failure(const std::string &verdict);

/// The handover of a verdict that says RS_OK, else nothing.
std::optional<rs_handover> handover_of(const std::string &verdict);

/// Reads the verdict of child `pid` from `fd` (closed). On failure the
/// child is reaped and the error says why, in one line.
img::Expected<rs_handover> await_verdict(int fd, pid_t pid);

/// "restore failed while STAGE: ERRNO" for the restorer's two bytes.
std::string describe_restorer_failure(const std::string &verdict);

/// Reaps `pid` (the child of the caller) and returns its exit status as a
/// shell reports it: the code, or 128+N for death by signal N (EINTR is
/// retried: signal handlers forward signals meanwhile).
img::Expected<int> wait_exit_status(pid_t pid);

}  // namespace ckpt::reader
