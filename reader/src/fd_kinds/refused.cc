// Kinds restore does not bring back yet: img::unsupported_state refuses an
// image holding one before restore starts anything, so reaching open is a
// bug in that ordering, reported as one line, never a silent skip.
#include "fd_kind.h"

namespace ckpt::reader {

img::Expected<int> open_refused(FdOpenContext &, const img::FdRecord &r) {
  return img::make_error("fd %d: %s: not supported", r.fd, img::fd_kind_name(r.type));
}

}  // namespace ckpt::reader
