// Turning a ProcessCapture into the notes of an image: the standard core
// notes as the kernel would write them, and the CKPT records.
#pragma once

#include <ckpt/img/image_notes.h>

#include "capture.h"

namespace ckpt::writer {

struct ImageIdentity {
  img::u8 image_id[16] = {};
  img::u64 created_sec = 0;
  img::u32 created_nsec = 0;
  img::i64 checkpoint_id = 1;
  std::string writer;
};

img::ImageNotes build_notes(const ProcessCapture &pc, const SegmentLayout &layout, const ImageIdentity &id);

/// A fresh identity: random image id, the current time.
ImageIdentity new_identity(const std::string &writer);

}  // namespace ckpt::writer
