// `imgtool info`: an image (or any x86-64 core) described as JSON, the one
// source both the --json output and the text summary are made from. The
// schema is documented in docs/INFO-JSON.md and only grows.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include <ckpt/img/expected.h>

namespace ckpt::tool {

inline constexpr int kInfoSchema = 1;

img::Expected<nlohmann::ordered_json> describe_image(const std::string &path);
std::string render_text(const nlohmann::ordered_json &info);
/// The --json form. Bytes that are not UTF-8 (a comm cut mid-character, an
/// odd path) become U+FFFD instead of aborting the dump.
std::string render_json(const nlohmann::ordered_json &info);

}  // namespace ckpt::tool
