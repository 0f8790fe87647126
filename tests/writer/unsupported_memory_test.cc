// The dump's refusal of memory it cannot save (writer/src/unsupported_memory.h).
// Secret memory is refused end to end in tests/restore
// (fidelity_test.cc); this machine has no device whose memory can be mapped
// (no /dev/mem, /dev/fb*, PCI resource files; /proc/bus/pci mmap is locked
// down), so VM_IO/VM_PFNMAP is checked here on smaps entries as the kernel
// prints them, alongside the kernel mappings that carry the same flags.
#include "unsupported_memory.h"

#include <gtest/gtest.h>

namespace ckpt::writer {
namespace {

MapEntry entry(const std::string &path, std::vector<std::string> flags, u64 start = 0x7f0000000000) {
  MapEntry m;
  m.start = start;
  m.end = start + 0x1000;
  m.prot = 3;
  m.shared = true;
  m.path = path;
  m.vmflags = std::move(flags);
  return m;
}

TEST(UnsupportedMemory, DeviceMappingsAreRefused) {
  // A framebuffer mapped with io_remap_pfn_range (smaps of an fbdev mmap).
  EXPECT_NE(unsupported_memory(entry("/dev/fb0", {"rd", "wr", "sh", "mr", "mw", "me", "ms", "io", "pf", "de", "dd"}))
                .find("VM_IO"),
            std::string::npos);
  // VM_PFNMAP alone (remap_pfn_range of RAM, e.g. a driver's buffer).
  EXPECT_NE(unsupported_memory(entry("/dev/somedev", {"rd", "sh", "pf"})), "");
}

TEST(UnsupportedMemory, KernelSpecialMappingsAreNot) {
  for (const char *p : {"[vvar]", "[vvar_vclock]", "[vdso]", "[vsyscall]"})
    EXPECT_EQ(unsupported_memory(entry(p, {"rd", "mr", "pf", "io", "de", "dd"})), "") << p;
}

TEST(UnsupportedMemory, OrdinaryMemoryIsNot) {
  EXPECT_EQ(unsupported_memory(entry("", {"rd", "wr", "mr", "mw", "me", "ac"})), "");
  EXPECT_EQ(unsupported_memory(entry("/dev/zero (deleted)", {"rd", "wr", "sh", "mr", "mw", "me", "ms"})), "");
  EXPECT_EQ(unsupported_memory(entry("/usr/lib/libc.so.6", {"rd", "ex", "mr", "mw", "me"})), "");
}

TEST(UnsupportedMemory, SecretMemoryAndHugetlbfsFilesAreRefused) {
  EXPECT_NE(unsupported_memory(entry("/secretmem (deleted)", {"rd", "wr", "sh", "mr", "mw", "me", "ms", "lo"})), "");
  EXPECT_NE(unsupported_memory(entry("/mnt/huge/buffer", {"rd", "wr", "sh", "mr", "mw", "me", "ms", "de", "ht"}))
                .find("hugetlbfs"),
            std::string::npos);
  // MAP_HUGETLB anonymous memory, private or shared, is restored.
  EXPECT_EQ(unsupported_memory(entry("/anon_hugepage (deleted)", {"rd", "wr", "mr", "mw", "me", "de", "ht"})), "");
}

TEST(UnsupportedMemory, OneLineNamesEveryOffender) {
  std::vector<MapEntry> maps = {entry("", {"rd"}, 0x1000), entry("/dev/fb0", {"rd", "io", "pf"}, 0x10000),
                                entry("/secretmem (deleted)", {"rd", "sh"}, 0x20000)};
  img::Status st = check_memory_supported(1234, maps);
  ASSERT_FALSE(st);
  std::string msg = st.error().message();
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_NE(msg.find("pid 1234"), std::string::npos) << msg;
  EXPECT_NE(msg.find("10000-11000 /dev/fb0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("20000-21000 /secretmem (deleted)"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("1000-2000"), std::string::npos) << msg;
  EXPECT_TRUE(check_memory_supported(1234, {maps[0]}));
}

}  // namespace
}  // namespace ckpt::writer
