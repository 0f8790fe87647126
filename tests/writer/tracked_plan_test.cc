// The page plan of memory dirty tracking covers (writer/src/memory.cc,
// DECISIONS 250): planned from PAGEMAP_SCAN's runs, it must say for every
// page what the per-page pagemap plan says (data, zero, the file's), and
// give frames for the written pages only. The child holds no uffd-wp
// markers, as a snapshot copy does not.
#include "memory.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include "child_process.h"

namespace ckpt::writer {
namespace {

using img::PageSource;
using img::u64;

constexpr u64 kPage = 4096;
constexpr u64 kPages = 64;

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

// Pages of the anonymous region written, read only (the zero page),
// written then dropped, and never touched, side by side; a private file
// mapping with some pages written (copy-on-write) and others only read.
// Replies "ANON FILE GUARDED FULL" (addresses in hex; GUARDED 1 if page 40
// is a guard page; FULL a mapping with every page written).
void body(int in, int out, const std::string &file) {
  char *a = static_cast<char *>(mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  CHILD_CHECK(a != MAP_FAILED, out);
  CHILD_CHECK(madvise(a, kPages * kPage, MADV_NOHUGEPAGE) == 0, out);
  volatile char sink = 0;
  for (u64 p = 0; p < kPages; p++) {
    char *pg = a + p * kPage;
    if (p % 7 == 0 || p % 11 == 3 || (p >= 20 && p < 26)) pg[p % kPage] = char(p + 1);  // written
    else if (p % 5 == 1) sink = sink + pg[0];                                             // zero page
  }
  CHILD_CHECK(madvise(a + 21 * kPage, 2 * kPage, MADV_DONTNEED) == 0, out);  // written, then dropped
  int guarded = madvise(a + 40 * kPage, kPage, MADV_GUARD_INSTALL) == 0;
  int fd = open(file.c_str(), O_RDONLY);
  CHILD_CHECK(fd >= 0, out);
  char *f = static_cast<char *>(mmap(nullptr, 16 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
  CHILD_CHECK(f != MAP_FAILED, out);
  for (u64 p = 0; p < 16; p++) {
    if (p % 3 == 0) f[p * kPage + 5] = 'x';  // an anonymous copy
    else sink = sink + f[p * kPage];         // the page cache's page
  }
  // Every page written, in a mapping of its own (MADV_DONTFORK keeps it
  // from merging): smaps' Anonymous equals its size, so it is not scanned.
  char *b = static_cast<char *>(mmap(nullptr, 16 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  CHILD_CHECK(b != MAP_FAILED, out);
  CHILD_CHECK(madvise(b, 16 * kPage, MADV_DONTFORK) == 0, out);
  for (u64 p = 0; p < 16; p++) b[p * kPage] = 1;
  dprintf(out, "%lx %lx %d %lx\n", (unsigned long)a, (unsigned long)f, guarded, (unsigned long)b);
  test::serve_commands(in, out, [](char) { return std::string("ok"); });
}

const VmaPlan *vma_at(const std::vector<VmaPlan> &plan, u64 addr) {
  for (const VmaPlan &v : plan)
    if (v.map.start <= addr && addr < v.map.end) return &v;
  return nullptr;
}

// Each page's source in [start, end) of a plan.
std::vector<PageSource> sources(const std::vector<VmaPlan> &plan, u64 start, u64 end) {
  std::vector<PageSource> out;
  for (u64 at = start; at < end; at += kPage) {
    const VmaPlan *v = vma_at(plan, at);
    PageSource s = PageSource::Absent;
    if (v)
      for (const PageRun &r : v->runs)
        if (r.start <= at && at < r.start + r.length) s = r.source;
    out.push_back(s);
  }
  return out;
}

// The frame of each page in [start, end), 0 where the plan has none.
std::vector<u64> frames(const std::vector<VmaPlan> &plan, u64 start, u64 end) {
  std::vector<u64> out;
  for (u64 at = start; at < end; at += kPage) {
    const VmaPlan *v = vma_at(plan, at);
    u64 pfn = 0;
    if (v)
      for (const PfnRun &r : v->frames)
        if (r.start <= at && at < r.start + r.pages * kPage) pfn = r.pfn + (at - r.start) / kPage;
    out.push_back(pfn);
  }
  return out;
}

TEST(TrackedPlan, PagemapScanRunsPlanEveryPageAsPagemapDoes) {
  char path[] = "/tmp/ckpt-tracked-plan-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string bytes(16 * kPage, 'f');
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()), ssize_t(bytes.size()));
  close(fd);
  test::Child child([&](int in, int out) { body(in, out, path); });
  ASSERT_TRUE(child.started());
  std::string reply = child.reply();
  // Unlinked only at the end: a deleted file's mapping is stored whole.
  struct Unlink {
    const char *p;
    ~Unlink() { unlink(p); }
  } unlink_at_end{path};
  unsigned long a = 0, f = 0, b = 0;
  int guarded = 0;
  ASSERT_EQ(std::sscanf(reply.c_str(), "%lx %lx %d %lx", &a, &f, &guarded, &b), 4) << reply;

  auto maps = read_maps(child.pid());
  ASSERT_TRUE(maps) << maps.error().message();
  std::vector<std::pair<u64, u64>> excluded;
  auto per_page = plan_memory(child.pid(), *maps, &excluded);
  ASSERT_TRUE(per_page) << per_page.error().message();

  // Tracked: both regions (the file mapping from its second page: a piece
  // that starts inside a mapping); written: two runs in each.
  WrittenPages tracking;
  tracking.tracked = {{a, a + kPages * kPage}, {f + kPage, f + 16 * kPage}, {b, b + 16 * kPage}};
  tracking.written = {{a, a + 8 * kPage},
                      {a + 20 * kPage, a + 30 * kPage},
                      {f + 3 * kPage, f + 4 * kPage},
                      {b + 2 * kPage, b + 5 * kPage}};
  // WrittenPages holds its ranges in ascending order (the mappings are
  // wherever mmap put them).
  auto by_address = [](const AddressRange &x, const AddressRange &y) { return x.start < y.start; };
  std::sort(tracking.tracked.begin(), tracking.tracked.end(), by_address);
  std::sort(tracking.written.begin(), tracking.written.end(), by_address);
  bool found = false;
  for (const MapEntry &m : *maps)
    if (m.start == b) {
      ASSERT_EQ(m.end, b + 16 * kPage);
      ASSERT_EQ(m.anonymous_kb * 1024, 16 * kPage);  // planned without a scan
      found = true;
    }
  ASSERT_TRUE(found);
  auto scanned = plan_memory(child.pid(), *maps, &excluded, &tracking);
  ASSERT_TRUE(scanned) << scanned.error().message();

  for (auto [start, end] :
       {std::pair<u64, u64>{a, a + kPages * kPage}, {f, f + 16 * kPage}, {b, b + 16 * kPage}}) {
    SCOPED_TRACE(std::to_string(start));
    auto want = sources(*per_page, start, end);
    EXPECT_EQ(sources(*scanned, start, end), want);
    // The cases the region was made to hold are there.
    if (start == a) {
      EXPECT_EQ(want[0], PageSource::Image);
      EXPECT_EQ(want[1], PageSource::Zero);    // the zero page
      EXPECT_EQ(want[21], PageSource::Zero);   // dropped
      EXPECT_EQ(want[2], PageSource::Zero);    // never touched
      if (guarded) {
        EXPECT_EQ(want[40], PageSource::Zero);
      }
    } else if (start == f) {
      EXPECT_EQ(want[3], PageSource::Image);   // copied on write
      EXPECT_EQ(want[4], PageSource::File);    // the page cache's
    }
    // Frames: the per-page plan's, where written or untracked; none elsewhere.
    auto all = frames(*per_page, start, end), got = frames(*scanned, start, end);
    for (u64 i = 0; i < all.size(); i++) {
      u64 at = start + i * kPage;
      bool keep = !tracking.covers(at, at + kPage) || !tracking.clean(at, at + kPage);
      EXPECT_EQ(got[i], keep ? all[i] : 0) << "page " << i;
    }
  }
  EXPECT_EQ(child.request('q'), "ok");
}

}  // namespace
}  // namespace ckpt::writer
