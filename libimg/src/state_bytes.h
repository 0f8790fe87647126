// Byte helpers shared by the encoders of fd states with variable data
// (fd_states.cc, inet_socket_state.cc): each part padded to 8 bytes, so
// that the next one starts 8-aligned on every platform.
#pragma once

#include <cstddef>
#include <cstring>
#include <vector>

#include <ckpt/img/format.h>

namespace ckpt::img::state_bytes {

inline size_t align8(size_t n) { return (n + 7) & ~size_t(7); }

/// Appends n bytes at p, then zeros up to a multiple of 8.
inline void append(std::vector<u8> &out, const void *p, size_t n) {
  const u8 *b = static_cast<const u8 *>(p);
  out.insert(out.end(), b, b + n);
  out.resize(align8(out.size()), 0);
}

/// Writes `fixed`, its header's size set to the whole state's, over the
/// first bytes of `out` (which the encoder reserved for it) and returns out.
template <typename State>
std::vector<u8> seal(State fixed, std::vector<u8> out) {
  fixed.header.size = u32(out.size());
  std::memcpy(out.data(), &fixed, sizeof fixed);
  return out;
}

}  // namespace ckpt::img::state_bytes
