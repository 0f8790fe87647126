#include <ckpt/img/xstate.h>

#include <cpuid.h>
#include <cstring>

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
  // CPUID instruction costs ~60 us here, and __get_cpuid_count adds a
  // second one (the highest leaf) to each query. Asked once per process,
  // with one highest-leaf query: restore built each thread's signal frame
  // twice (restorer_args.cc measures, then lays out) with 16 CPUIDs each,
  // ~2 ms per thread (decision 207).
  static const XsaveLayout layout = [] {
    XsaveLayout l = intel_xsave_layout();
    if (__get_cpuid_max(0, nullptr) < 0xd) return l;
    for (int i = 2; i < XsaveLayout::kComponents; i++) {
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
