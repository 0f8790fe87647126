// What image_diff.cc's parts share: one side of `imgtool diff` (one
// process of one image, decoded) and the memory comparison
// (image_diff_memory.cc).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

namespace ckpt::tool::diff {

using json = nlohmann::ordered_json;

// One side of the comparison: one process of one image, decoded.
struct Side {
  std::string path;
  img::ImageReader image;
  img::CkptView view;
  img::CoreView core;
  const img::TaskRecord *task = nullptr;
  std::vector<const img::VmaRecord *> vmas;  // of this process, ascending
};

/// Process `pid` (0: the root) of the image at `path`, an incremental one
/// merged with its chain.
img::Expected<Side> open_side(const std::string &path, img::i32 pid);

/// Mappings added, removed, resized or reprotected, and the runs of pages
/// whose bytes differ, by address.
json diff_memory(const Side &a, const Side &b);

/// `base` with the fields of `extra` added (json::update returns nothing).
json with(json base, const json &extra);

}  // namespace ckpt::tool::diff
