// Mappings whose memory the dumper cannot save or restore recreate: the
// dump refuses them (naming pid, range and reason) rather than writing an
// image that would come back with different memory.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include <ckpt/img/expected.h>

#include "procfs.h"

namespace ckpt::writer {

/// Why mapping m cannot be checkpointed, or "" if it can.
std::string unsupported_memory(const MapEntry &m);

/// Fails with one line naming every mapping of pid that
/// unsupported_memory() rejects.
img::Status check_memory_supported(pid_t pid, const std::vector<MapEntry> &maps);

}  // namespace ckpt::writer
