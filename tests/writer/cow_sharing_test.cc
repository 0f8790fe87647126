// The planning of memory stored once across a tree (cow_sharing.h): which
// runs of which process become Earlier, naming which process and address.
// Synthetic plans: no process is needed.
#include <gtest/gtest.h>

#include <sys/mman.h>

#include "cow_sharing.h"

namespace ckpt::writer {
namespace {

using img::kPageSize;
using img::PageSource;
using img::u64;
using img::VmaKind;

constexpr u64 P = kPageSize;

// A MAP_SHARED mapping of object (kind, 0:1, ino) at `start`, `pages` long,
// from page `first_page` of the object, with the given runs (default: one
// Image run over all of it, as plan_memory makes for shared memory).
VmaPlan shared_mapping(u64 start, u64 pages, u64 first_page, u64 ino, VmaKind kind = VmaKind::SharedAnon,
                       std::vector<PageRun> runs = {}) {
  VmaPlan v;
  v.map.start = start;
  v.map.end = start + pages * P;
  v.map.shared = true;
  v.map.offset = first_page * P;
  v.map.dev_major = 0;
  v.map.dev_minor = 1;
  v.map.ino = ino;
  v.map.prot = PROT_READ | PROT_WRITE;
  v.kind = kind;
  v.flags = img::kVmaShared;
  v.runs = runs.empty() ? std::vector<PageRun>{{start, pages * P, PageSource::Image}} : runs;
  return v;
}

PageRun earlier(u64 start, u64 pages, u64 from_addr, pid_t from_pid) {
  return {start, pages * P, PageSource::Earlier, from_addr, from_pid};
}
PageRun image(u64 start, u64 pages) { return {start, pages * P, PageSource::Image}; }

void expect_runs(const std::vector<PageRun> &got, const std::vector<PageRun> &want, const char *who) {
  ASSERT_EQ(got.size(), want.size()) << who;
  for (size_t i = 0; i < want.size(); i++) {
    EXPECT_EQ(got[i].start, want[i].start) << who << " run " << i;
    EXPECT_EQ(got[i].length, want[i].length) << who << " run " << i;
    EXPECT_EQ(got[i].source, want[i].source) << who << " run " << i;
    if (want[i].source == PageSource::Earlier) {
      EXPECT_EQ(got[i].earlier_addr, want[i].earlier_addr) << who << " run " << i;
      EXPECT_EQ(got[i].earlier_pid, want[i].earlier_pid) << who << " run " << i;
    }
  }
}

// The object's pages are named by offset, whatever the address: a later
// process refers to the first one mapping each page, and stores the pages
// no earlier process maps; a third one refers to both.
TEST(CowSharing, SharedObjectPagesByOffsetNotAddress) {
  std::vector<VmaPlan> root{shared_mapping(0x10000000, 8, 0, 100)};                 // object pages 0..7
  std::vector<VmaPlan> second{shared_mapping(0x20000000, 8, 2, 100)};               // 2..9, elsewhere
  std::vector<VmaPlan> third{shared_mapping(0x30000000, 4, 6, 100)};                // 6..9
  CowSharing s = share_cow_pages({{10, &root}, {11, &second}, {12, &third}});
  expect_runs(root[0].runs, {image(0x10000000, 8)}, "root");
  expect_runs(second[0].runs, {earlier(0x20000000, 6, 0x10002000, 10), image(0x20006000, 2)}, "second");
  expect_runs(third[0].runs, {earlier(0x30000000, 2, 0x10006000, 10), earlier(0x30002000, 2, 0x20006000, 11)},
              "third");
  EXPECT_EQ(s.shared_object_bytes, (6 + 4) * P);
  EXPECT_EQ(s.bytes, 0u);
  EXPECT_EQ(s.ranges, 3u);
}

// Another inode, another kind with the same inode, and a second mapping of
// the object in the same process are not references: a core refers to
// earlier cores only, and only to the same object.
TEST(CowSharing, OnlyTheSameObjectOfAnEarlierProcess) {
  std::vector<VmaPlan> root{shared_mapping(0x10000000, 4, 0, 100), shared_mapping(0x11000000, 4, 0, 100)};
  std::vector<VmaPlan> child{shared_mapping(0x10000000, 4, 0, 101), shared_mapping(0x12000000, 4, 0, 100, VmaKind::SysvShm),
                             shared_mapping(0x13000000, 4, 0, 100)};
  share_cow_pages({{10, &root}, {11, &child}});
  expect_runs(root[0].runs, {image(0x10000000, 4)}, "root's first mapping");
  expect_runs(root[1].runs, {image(0x11000000, 4)}, "root's second mapping of the same object");
  expect_runs(child[0].runs, {image(0x10000000, 4)}, "another inode");
  expect_runs(child[1].runs, {image(0x12000000, 4)}, "another kind");
  expect_runs(child[2].runs, {earlier(0x13000000, 4, 0x10000000, 10)}, "the same object");
}

// A reference lies within one stored run of its source (one PT_LOAD): the
// source's pages of two adjacent mappings (mprotect split one) are two
// runs, and a page the source does not store (excluded: Zero) is stored.
TEST(CowSharing, ReferencesStayInsideOneStoredRun) {
  std::vector<VmaPlan> root{shared_mapping(0x10000000, 4, 0, 100), shared_mapping(0x10004000, 4, 4, 100)};
  root[0].runs = {image(0x10000000, 1), {0x10001000, P, PageSource::Zero}, image(0x10002000, 2)};
  std::vector<VmaPlan> child{shared_mapping(0x40000000, 8, 0, 100)};
  share_cow_pages({{10, &root}, {11, &child}});
  expect_runs(child[0].runs,
              {earlier(0x40000000, 1, 0x10000000, 10), image(0x40001000, 1), earlier(0x40002000, 2, 0x10002000, 10),
               earlier(0x40004000, 4, 0x10004000, 10)},
              "child");
}

// Which mappings are shared memory objects: shared anonymous, hugetlb and
// SysV memory, a deleted file mapped shared (memfd, unlinked /dev/shm);
// not a private mapping, nor a shared mapping of a file that exists.
TEST(CowSharing, SharedMemoryObjects) {
  EXPECT_TRUE(is_shared_memory_object(shared_mapping(0x1000, 1, 0, 1)));
  EXPECT_TRUE(is_shared_memory_object(shared_mapping(0x1000, 1, 0, 1, VmaKind::Hugetlb)));
  EXPECT_TRUE(is_shared_memory_object(shared_mapping(0x1000, 1, 0, 1, VmaKind::SysvShm)));
  VmaPlan memfd = shared_mapping(0x1000, 1, 0, 1, VmaKind::File);
  EXPECT_FALSE(is_shared_memory_object(memfd));
  memfd.flags |= img::kVmaDeletedFile;
  EXPECT_TRUE(is_shared_memory_object(memfd));
  VmaPlan priv = shared_mapping(0x1000, 1, 0, 1, VmaKind::Anon);
  priv.flags = 0;
  EXPECT_FALSE(is_shared_memory_object(priv));
  VmaPlan private_memfd = memfd;
  private_memfd.flags &= ~img::kVmaShared;
  EXPECT_FALSE(is_shared_memory_object(private_memfd));
}

// Private memory still shared copy-on-write is matched by frame, as
// before, next to a shared object in the same processes.
TEST(CowSharing, PrivateFramesBesideSharedObjects) {
  VmaPlan anon;
  anon.map.start = 0x50000000;
  anon.map.end = 0x50000000 + 4 * P;
  anon.kind = VmaKind::Anon;
  anon.runs = {image(0x50000000, 4)};
  anon.frames = {{0x50000000, 1000, 4}};
  VmaPlan child_anon = anon;
  child_anon.frames = {{0x50000000, 1000, 2}, {0x50002000, 5000, 2}};  // two pages written since fork
  std::vector<VmaPlan> root{anon, shared_mapping(0x10000000, 4, 0, 100)};
  std::vector<VmaPlan> child{child_anon, shared_mapping(0x10000000, 4, 0, 100)};
  CowSharing s = share_cow_pages({{10, &root}, {11, &child}});
  expect_runs(child[0].runs, {earlier(0x50000000, 2, 0x50000000, 10), image(0x50002000, 2)}, "private");
  expect_runs(child[1].runs, {earlier(0x10000000, 4, 0x10000000, 10)}, "shared");
  EXPECT_EQ(s.bytes, 2 * P);
  EXPECT_EQ(s.shared_object_bytes, 4 * P);
}

}  // namespace
}  // namespace ckpt::writer
