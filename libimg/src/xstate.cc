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

XsaveLayout cpu_xsave_layout() {
  XsaveLayout l = intel_xsave_layout();
  for (int i = 2; i < XsaveLayout::kComponents; i++) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_count(0xd, i, &a, &b, &c, &d) && a) {
      l.size[i] = a;
      l.offset[i] = b;
    }
  }
  return l;
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
