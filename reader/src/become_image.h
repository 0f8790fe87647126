// The restoring child's side: the process that turns into the image's.
// In order: the fd table (with our own fds moved out of its way), the
// objects behind the mappings, the process state, the restorer region,
// the jump. The parent waits for the restorer's verdict (verdict.h).
#pragma once

#include <string>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

namespace ckpt::reader {

/// One process of an image, as the child restoring it needs it.
struct ProcessImage {
  std::string path;                 ///< the image file (the restorer reads memory from it)
  const img::ImageReader &image;
  const img::CkptView &view;
  const img::CoreView &core;
};

/// What the child keeps of imgtool's: the verdict pipe, the lazy channel,
/// the restoring terminal.
struct ChildChannels {
  int status_fd = -1;               ///< write end of the verdict pipe
  int lazy_sock = -1;               ///< --lazy: the channel to the helper, or -1
  int terminal[3] = {-1, -1, -1};   ///< the restoring terminal's fds 0..2 (or -1)
};

/// Turns the calling process into the image's. Returns only on failure,
/// before the point of no return; the caller reports the error on
/// `channels.status_fd` (updated: it is moved out of the restored fds' way).
img::Status become_image(const ProcessImage &process, ChildChannels &channels);

/// become_image, then the report of its failure on the verdict pipe and
/// _exit(127). For the child right after clone.
[[noreturn]] void become_image_or_report(const ProcessImage &process, ChildChannels channels);

}  // namespace ckpt::reader
