// How `imgtool info` and `imgtool diff` write values for people and for
// JSON: one spelling of addresses, protections, signals and limits.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include <ckpt/img/records.h>

namespace ckpt::tool {

/// "0x1f".
std::string hex(img::u64 v);
/// "rw-p" / "r-xs" from PROT_* bits.
std::string prot_string(img::u32 prot, bool shared);
/// "SIGUSR1", "SIGRTMIN+3", "signal 32" (docs/INFO-JSON.md "Signal names").
std::string signal_name(int sig);
/// The names of the signals in a mask (bit N-1 = signal N), ascending.
nlohmann::ordered_json signal_set(img::u64 mask);
/// "nofile" for RLIMIT_NOFILE; "unknown" past the known ones.
const char *rlimit_name(img::u32 resource);

}  // namespace ckpt::tool
