// NT_X86_XSTATE in one canonical layout. The kernel hands out the XSAVE
// area in the running CPU's standard-format layout, where each component
// sits at the offset CPUID leaf 0xD gives; AMD CPUs without MPX place the
// AVX-512 components lower than Intel CPUs do. gdb up to 13 reads the note
// with Intel's offsets only, and gdb's own gcore writes Intel's layout, so
// images always store Intel's layout: the note is readable by every gdb and
// does not depend on the dumping CPU's vendor. Restore converts back to the
// restoring CPU's layout.
#pragma once

#include <array>
#include <span>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/format.h>

namespace ckpt::img {

/// Offset and size of each XSAVE user component 0..kXsaveComponents-1.
struct XsaveLayout {
  static constexpr int kComponents = 10;  // x87 .. PKRU
  std::array<u32, kComponents> offset{};
  std::array<u32, kComponents> size{};
};

/// Intel's standard-format offsets (SDM vol. 1, 13.4.3), as gdb assumes.
const XsaveLayout &intel_xsave_layout();

/// This CPU's layout, from CPUID leaf 0xD (asked once per process: CPUID
/// traps to the hypervisor on a VM).
const XsaveLayout &cpu_xsave_layout();

/// True when AVX2 is usable here: the CPU has it and the kernel saves its
/// registers (XCR0), from the CPUID and XGETBV glibc read at its start, so
/// no CPUID is asked again (DECISIONS 245).
bool cpu_avx2_usable();

/// Bytes of a standard-format XSAVE area holding the features in xcr0.
u32 xsave_size(const XsaveLayout &layout, u64 xcr0);

/// Moves every component present in xcr0 from one layout to the other. The
/// legacy area and header (bytes 0..575) are copied as they are. Fails on
/// components beyond PKRU, which have no canonical place.
Expected<std::vector<u8>> convert_xsave(std::span<const u8> area, u64 xcr0, const XsaveLayout &from,
                                        const XsaveLayout &to);

}  // namespace ckpt::img
