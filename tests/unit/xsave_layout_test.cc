// cpu_xsave_layout() asks CPUID leaf 0xD only for the XSAVE components this
// CPU's XCR0 enables (DECISIONS 234): each of those must have the offset
// and size CPUID gives, every other keeps Intel's place.
#include <gtest/gtest.h>

#include <cpuid.h>

#include <ckpt/img/xstate.h>

namespace ckpt::img {
namespace {

TEST(XsaveLayout, EnabledComponentsComeFromCpuid) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) GTEST_SKIP() << "no OSXSAVE on this CPU";
  unsigned lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  u64 xcr0 = (u64(hi) << 32) | lo;
  const XsaveLayout &cpu = cpu_xsave_layout();
  const XsaveLayout &intel = intel_xsave_layout();
  int asked = 0;
  for (int i = 2; i < XsaveLayout::kComponents; i++) {
    __cpuid_count(0xd, i, a, b, c, d);
    if (((xcr0 >> i) & 1) && a) {
      asked++;
      EXPECT_EQ(cpu.size[i], a) << "component " << i;
      EXPECT_EQ(cpu.offset[i], b) << "component " << i;
    } else {
      EXPECT_EQ(cpu.size[i], intel.size[i]) << "component " << i;
      EXPECT_EQ(cpu.offset[i], intel.offset[i]) << "component " << i;
    }
  }
  // x86-64 machines this project runs on have AVX at least.
  EXPECT_GE(asked, 1);
  EXPECT_GT(xsave_size(cpu, xcr0), 576u);
}

}  // namespace
}  // namespace ckpt::img

// cpu_avx2_usable (glibc's copy of CPUID and XGETBV, DECISIONS 245) says
// what libgcc's own probe says: the CPU has AVX2 and XCR0 enables its
// registers. It picks the restorer's AVX2 hash (decision 230).
TEST(XsaveLayout, Avx2UsableAgreesWithTheCpu) {
  __builtin_cpu_init();
  EXPECT_EQ(ckpt::img::cpu_avx2_usable(), __builtin_cpu_supports("avx2") != 0);
}
