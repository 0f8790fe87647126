#include <ckpt/img/xstate.h>

#include <cpuid.h>
#include <cstring>

// glibc quirk: <sys/platform/x86.h> is a C header; its inline functions
// return _Bool, which clang++ rejects (g++ takes it as an extension). In
// C++ that type is bool.
#define _Bool bool
#include <sys/platform/x86.h>
#undef _Bool

namespace ckpt::img {

const XsaveLayout &intel_xsave_layout() {
  static const XsaveLayout layout = [] {
    XsaveLayout l;
    l.offset = {0, 160, 576, 960, 1024, 1088, 1152, 1664, 0, 2688};
    l.size = {160, 256, 256, 64, 64, 64, 512, 1024, 0, 8};
    return l;
  }();
  return layout;
}

const XsaveLayout &cpu_xsave_layout() {
  // Kernel quirk (of this VM's hypervisor, PVM; any VM traps CPUID): each
  // CPUID instruction costs ~60 us there (~16 us on the Intel VM of
  // session 11). Asked once per process: restore built each thread's
  // signal frame twice (restorer_args.cc measures, then lays out) with 16
  // CPUIDs each, ~2 ms per thread (decision 207). And only for the
  // components this CPU's XCR0 enables (decision 234): no XSAVE area here
  // holds any other (restore refuses an image that uses one,
  // preflight.cc), and they keep Intel's place, as they did when CPUID
  // answered 0 for them. Whether leaf 0xD exists comes from glibc's copy
  // of leaf 1 (OSXSAVE implies XSAVE, which implies the leaf; SDM vol. 1,
  // 13.2), not from a highest-leaf CPUID: 9 CPUIDs before, 4 now on this
  // VM (XCR0 0xe7: AVX and AVX-512).
  static const XsaveLayout layout = [] {
    XsaveLayout l = intel_xsave_layout();
    if (!CPU_FEATURE_PRESENT(OSXSAVE)) return l;
    unsigned lo, hi;
    asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    u64 xcr0 = (u64(hi) << 32) | lo;
    for (int i = 2; i < XsaveLayout::kComponents; i++) {
      if (!((xcr0 >> i) & 1)) continue;
      unsigned a = 0, b = 0, c = 0, d = 0;
      __cpuid_count(0xd, i, a, b, c, d);
      if (a) {
        l.size[i] = a;
        l.offset[i] = b;
      }
    }
    return l;
  }();
  return layout;
}

bool cpu_avx2_usable() { return CPU_FEATURE_ACTIVE(AVX2); }

u32 xsave_size(const XsaveLayout &layout, u64 xcr0) {
  u32 end = 576;
  for (int i = 2; i < XsaveLayout::kComponents; i++)
    if ((xcr0 >> i) & 1) end = std::max(end, layout.offset[i] + layout.size[i]);
  return end;
}

Expected<std::vector<u8>> convert_xsave(std::span<const u8> area, u64 xcr0, const XsaveLayout &from,
                                        const XsaveLayout &to) {
  if (xcr0 >> XsaveLayout::kComponents)
    return make_error("XSAVE features 0x%llx go beyond PKRU and have no canonical layout", (unsigned long long)xcr0);
  if (area.size() < 576) return make_error("XSAVE area of %zu bytes is shorter than its 576-byte header", area.size());
  std::vector<u8> out(xsave_size(to, xcr0), 0);
  std::memcpy(out.data(), area.data(), 576);
  for (int i = 2; i < XsaveLayout::kComponents; i++) {
    if (!((xcr0 >> i) & 1) || !to.size[i]) continue;
    if (from.size[i] != to.size[i]) return make_error("XSAVE component %d has size %u here but %u in the image", i, from.size[i], to.size[i]);
    if (u64(from.offset[i]) + from.size[i] > area.size())
      return make_error("XSAVE component %d lies outside the %zu-byte area", i, area.size());
    std::memcpy(out.data() + to.offset[i], area.data() + from.offset[i], to.size[i]);
  }
  return out;
}

}  // namespace ckpt::img
