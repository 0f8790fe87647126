// smaps read before the freeze (smaps_before.h, DECISIONS 218): adopted in
// the window only while /proc/PID/maps shows the same mappings and nothing
// is locked, and confirmed afterwards by the copy's smaps, mapping by
// address, apart from what fork drops.
#include <gtest/gtest.h>

#include <csignal>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "smaps_before.h"

namespace ckpt::writer {
namespace {

MapEntry anon(u64 start, u64 end, std::vector<std::string> flags, u64 anon_kb = 0) {
  MapEntry m;
  m.start = start;
  m.end = end;
  m.prot = PROT_READ | PROT_WRITE;
  m.offset = start;  // as maps prints an anonymous mapping's vm_pgoff
  m.vmflags = std::move(flags);
  m.anonymous_kb = anon_kb;
  m.rss_kb = anon_kb;
  m.kernel_page_kb = 4;
  return m;
}

constexpr u64 kA = 0x100000, kB = 0x200000, kC = 0x300000, kD = 0x400000;

TEST(SmapsBefore, TheSameMappingsConfirmAndTakeTheLaterCounters) {
  std::vector<MapEntry> maps = {anon(kA, kB, {"rd", "wr", "mr", "mw", "me", "ac"}, 0),
                                anon(kB, kC, {"rd", "wr", "mr", "mw", "me", "ac", "hg"}, 0)};
  std::vector<MapEntry> later = {anon(kA, kB, {"rd", "wr", "mr", "mw", "me", "ac"}, 12),
                                 anon(kB, kC, {"rd", "wr", "hg", "mr", "mw", "me", "ac"}, 0)};
  std::string why;
  ASSERT_TRUE(confirm_smaps(maps, later, true, why)) << why;
  EXPECT_EQ(maps[0].anonymous_kb, 12u);  // written since the early read
  EXPECT_EQ(maps[1].anonymous_kb, 0u);
}

TEST(SmapsBefore, FlagsForkDropsAreNotCompared) {
  // The copy has no "lo"/"uw" (dup_mmap, dup_userfaultfd).
  std::vector<MapEntry> maps = {anon(kA, kB, {"rd", "wr", "uw"})};
  std::vector<MapEntry> later = {anon(kA, kB, {"rd", "wr"})};
  std::string why;
  EXPECT_TRUE(confirm_smaps(maps, later, true, why)) << why;
}

TEST(SmapsBefore, AChangedFlagIsAMismatch) {
  std::vector<MapEntry> maps = {anon(kA, kB, {"rd", "wr"})};
  std::vector<MapEntry> later = {anon(kA, kB, {"rd", "wr", "wf"})};
  std::string why;
  EXPECT_FALSE(confirm_smaps(maps, later, true, why));
  EXPECT_EQ(why, "the VmFlags of the mapping at 0x100000-0x200000 changed");
}

// Flags from the parent image (smaps_from_parent.h) hold only what PREV
// can say: confirmed on those, the mapping takes all the copy's.
TEST(SmapsBefore, FlagsFromTheParentTakeTheCopysOnAMatch) {
  std::vector<MapEntry> maps = {anon(kA, kB, {"ac", "uw"}), anon(kB, kC, {"ac", "dd", "uw"})};
  for (MapEntry &m : maps) m.flags_from_parent = true;
  std::vector<MapEntry> later = {anon(kA, kB, {"rd", "wr", "mr", "mw", "me", "ac"}, 8),
                                 anon(kB, kC, {"rd", "wr", "mr", "mw", "me", "dd", "ac"})};
  std::string why;
  ASSERT_TRUE(confirm_smaps(maps, later, true, why)) << why;
  EXPECT_EQ(maps[0].vmflags, (std::vector<std::string>{"ac", "me", "mr", "mw", "rd", "wr"}));
  EXPECT_TRUE(maps[1].has_flag("dd"));
  EXPECT_FALSE(maps[0].flags_from_parent);
  EXPECT_EQ(maps[0].anonymous_kb, 8u);
}

TEST(SmapsBefore, AFlagFromTheParentTheCopyDoesNotShowIsAMismatch) {
  for (const char *flag : {"dd", "wf", "hg", "nh", "nr"}) {
    std::vector<MapEntry> maps = {anon(kA, kB, {"ac"})};
    maps[0].flags_from_parent = true;
    std::vector<MapEntry> later = {anon(kA, kB, {"rd", "wr", "mr", "mw", "me", "ac", flag})};
    std::string why;
    EXPECT_FALSE(confirm_smaps(maps, later, true, why)) << flag;
    EXPECT_EQ(why, "the VmFlags of the mapping at 0x100000-0x200000 are not the parent's") << flag;
  }
}

TEST(SmapsBefore, MappingsMergedByTheTrackerConfirmWithSummedCounters) {
  // Two neighbours the dirty tracker's registration merged in the window.
  std::vector<MapEntry> maps = {anon(kA, kB, {"rd", "wr", "uw"}, 0), anon(kB, kC, {"rd", "wr"}, 0),
                                anon(kC, kD, {"rd", "wr"}, 0)};
  std::vector<MapEntry> later = {anon(kA, kC, {"rd", "wr"}, 8), anon(kC, kD, {"rd", "wr"}, 0)};
  std::string why;
  ASSERT_TRUE(confirm_smaps(maps, later, true, why)) << why;
  EXPECT_GT(maps[0].anonymous_kb, 0u);
  EXPECT_GT(maps[1].anonymous_kb, 0u);  // a bound: pagemap decides
  EXPECT_EQ(maps[2].anonymous_kb, 0u);
}

TEST(SmapsBefore, AMergedSumIsKeptBelowEachMappingsSize) {
  // Every page of the merged VMA present: the sum (2 MiB) covers either
  // 1 MiB mapping, but neither may read as "every page present" (a plan
  // under dirty tracking would then skip its scan, and a dropped page would
  // be stored as data). A mapping of its own that is full stays full.
  std::vector<MapEntry> maps = {anon(kA, kB, {"rd", "wr", "uw"}), anon(kB, kC, {"rd", "wr"}),
                                anon(kC, kD, {"rd", "wr"})};
  std::vector<MapEntry> later = {anon(kA, kC, {"rd", "wr"}, 2048), anon(kC, kD, {"rd", "wr"}, 1024)};
  std::string why;
  ASSERT_TRUE(confirm_smaps(maps, later, true, why)) << why;
  EXPECT_GT(maps[0].anonymous_kb, 0u);
  EXPECT_LT(maps[0].anonymous_kb, 1024u);
  EXPECT_GT(maps[1].anonymous_kb, 0u);
  EXPECT_LT(maps[1].anonymous_kb, 1024u);
  EXPECT_EQ(maps[2].anonymous_kb, 1024u);
}

TEST(SmapsBefore, DontForkIsAbsentFromTheCopyOnly) {
  std::vector<MapEntry> maps = {anon(kA, kB, {"rd", "wr", "dc"}), anon(kB, kC, {"rd", "wr"})};
  std::vector<MapEntry> copy = {anon(kB, kC, {"rd", "wr"})};
  std::string why;
  EXPECT_TRUE(confirm_smaps(maps, copy, true, why)) << why;
  // The target itself (no copy made) still shows it.
  std::vector<MapEntry> target = {anon(kA, kB, {"rd", "wr", "dc"}), anon(kB, kC, {"rd", "wr"})};
  EXPECT_TRUE(confirm_smaps(maps, target, false, why)) << why;
  EXPECT_FALSE(confirm_smaps(maps, copy, false, why));
  EXPECT_EQ(why, "the mapping at 0x100000-0x200000 is gone");
}

TEST(SmapsBefore, DontForkMadeOrUndoneSinceIsAMismatch) {
  std::string why;
  // Made MADV_DONTFORK after the early read: not in the copy.
  std::vector<MapEntry> maps = {anon(kA, kB, {"rd", "wr"})};
  EXPECT_FALSE(confirm_smaps(maps, {}, true, why));
  EXPECT_EQ(why, "the mapping at 0x100000-0x200000 is not in the copy");
  // MADV_DOFORK since: in the copy after all.
  maps = {anon(kA, kB, {"rd", "wr", "dc"})};
  EXPECT_FALSE(confirm_smaps(maps, {anon(kA, kB, {"rd", "wr"})}, true, why));
  EXPECT_EQ(why, "the mapping at 0x100000-0x200000 is no longer MADV_DONTFORK");
}

TEST(SmapsBefore, MemoryTheTargetDidNotShowIsAMismatch) {
  std::vector<MapEntry> maps = {anon(kA, kB, {"rd", "wr"})};
  std::string why;
  EXPECT_FALSE(confirm_smaps(maps, {anon(kA, kC, {"rd", "wr"})}, true, why));
  EXPECT_EQ(why, "the copy has mappings the target did not show");
  maps = {anon(kA, kB, {"rd", "wr"})};
  MapEntry moved = anon(kA, kB, {"rd", "wr"});
  moved.prot = PROT_READ;
  EXPECT_FALSE(confirm_smaps(maps, {moved}, true, why));
  EXPECT_EQ(why, "the mapping at 0x100000-0x200000 changed");
}

// A child that waits; killed and reaped at the end.
struct Sleeper {
  pid_t pid = fork();
  Sleeper() {
    if (pid == 0) {
      pause();
      _exit(0);
    }
  }
  ~Sleeper() {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
};

TEST(SmapsBefore, AdoptedWhileMapsAgreeAndNothingIsLocked) {
  Sleeper child;
  ASSERT_GT(child.pid, 0);
  auto before = read_smaps_before_freeze(child.pid, {});
  ASSERT_EQ(before.count(child.pid), 1u);
  const std::vector<MapEntry> &maps = before[child.pid];
  auto status = read_status(child.pid);
  ASSERT_TRUE(status) << status.error().message();
  ASSERT_TRUE(status->vm_lck_kb && *status->vm_lck_kb == 0);
  auto adopted = adopt_smaps_before(child.pid, maps, *status);
  ASSERT_TRUE(adopted) << adopted.error().message();
  ASSERT_TRUE(adopted->has_value());
  ASSERT_EQ((*adopted)->size(), maps.size());
  for (size_t i = 0; i < maps.size(); i++) {
    const MapEntry &m = (**adopted)[i];
    EXPECT_EQ(m.vmflags, maps[i].vmflags);
    // Memory read while frozen is planned from pagemap, not stale counters.
    if (m.shared || m.has_flag("dc") || m.has_flag("wf") || m.has_flag("io")) {
      EXPECT_GT(m.anonymous_kb, 0u);
      EXPECT_GT(m.swap_kb, 0u);
    }
  }
  // Something locked at the instant: "lo" cannot be confirmed by a copy.
  ProcStatus locked = *status;
  locked.vm_lck_kb = 4;
  auto refused = adopt_smaps_before(child.pid, maps, locked);
  ASSERT_TRUE(refused);
  EXPECT_FALSE(refused->has_value());
  // A mapping gone since the early read.
  std::vector<MapEntry> stale = maps;
  stale.push_back(anon(0x1000, 0x2000, {"rd"}));
  auto differs = adopt_smaps_before(child.pid, stale, *status);
  ASSERT_TRUE(differs);
  EXPECT_FALSE(differs->has_value());
}

}  // namespace
}  // namespace ckpt::writer
