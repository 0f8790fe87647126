#include "cow_sharing.h"

#include <map>
#include <tuple>
#include <unordered_map>

namespace ckpt::writer {

using namespace img;

namespace {

// Where an earlier process stores a page's bytes: its pid, the address,
// and which of its Image runs holds it (a reference stays inside one).
struct Stored {
  pid_t pid = 0;
  u64 addr = 0;
  u64 run = 0;
};

// What names a page's bytes across the processes of a tree: a physical
// frame (object 0, `at` the PFN) for private memory still shared
// copy-on-write, or a page of a shared memory object (`object` its number
// here, from 1; `at` the page's offset in it).
struct PageKey {
  u64 object = 0, at = 0;
  bool operator==(const PageKey &o) const { return object == o.object && at == o.at; }
};
struct PageKeyHash {
  size_t operator()(const PageKey &k) const { return std::hash<u64>()(k.at * 0x9e3779b97f4a7c15ull ^ k.object); }
};

// Walks a VMA's frames alongside its pages: frame_at(addr) for ascending
// addresses, 0 where pagemap gave none.
class FrameCursor {
 public:
  explicit FrameCursor(const std::vector<PfnRun> &frames) : frames_(frames) {}
  u64 frame_at(u64 addr) {
    while (i_ < frames_.size() && frames_[i_].start + frames_[i_].pages * kPageSize <= addr) i_++;
    if (i_ == frames_.size() || frames_[i_].start > addr) return 0;
    return frames_[i_].pfn + (addr - frames_[i_].start) / kPageSize;
  }

 private:
  const std::vector<PfnRun> &frames_;
  size_t i_ = 0;
};

// The key of each page of one VMA, for ascending addresses: the object's
// offset for a shared memory object, the frame for private memory.
class KeyCursor {
 public:
  KeyCursor(const VmaPlan &v, u64 object) : v_(v), object_(object), frames_(v.frames) {}
  bool keyed() const { return object_ || !v_.frames.empty(); }
  // False where the page has no key (a private page without a frame).
  bool key_at(u64 addr, PageKey &key) {
    if (object_) {
      // The object's offset of this page: the mapping's (maps' offset
      // column, vm_pgoff) plus how far into the mapping it lies.
      key = {object_, (v_.map.offset + (addr - v_.map.start)) / kPageSize};
      return true;
    }
    key = {0, frames_.frame_at(addr)};
    return key.at != 0;
  }

 private:
  const VmaPlan &v_;
  u64 object_;
  FrameCursor frames_;
};

// Appends one page (or a run of another source) to `runs`, extending the
// last run when it continues it: same source, and for Earlier the next
// address of the same stored run of the same process.
void append(std::vector<PageRun> &runs, const PageRun &page, u64 source_run, u64 &last_source_run) {
  if (!runs.empty()) {
    PageRun &last = runs.back();
    bool follows = last.source == page.source && last.start + last.length == page.start;
    if (follows && page.source == PageSource::Earlier)
      follows = last.earlier_pid == page.earlier_pid && last.earlier_addr + last.length == page.earlier_addr &&
                last_source_run == source_run;
    if (follows) {
      last.length += page.length;
      return;
    }
  }
  runs.push_back(page);
  last_source_run = source_run;
}

}  // namespace

bool is_shared_memory_object(const VmaPlan &v) {
  if (!(v.flags & kVmaShared)) return false;
  switch (v.kind) {
    case VmaKind::SharedAnon:
    case VmaKind::Hugetlb:
    case VmaKind::SysvShm:
      return true;
    case VmaKind::File:
      // A shared mapping of a deleted file (a memfd, an unlinked /dev/shm
      // object) is stored like memory; one of a file that still exists
      // stores nothing (its bytes are the file's).
      return (v.flags & kVmaDeletedFile) != 0;
    default:
      return false;
  }
}

CowSharing share_cow_pages(const std::vector<SharingMember> &members) {
  CowSharing out;
  std::unordered_map<PageKey, Stored, PageKeyHash> stored;  // where an earlier process stores a page
  // Shared memory objects by (kind, device, inode): the same key restore
  // makes one object of (mapped_objects.h), numbered from 1.
  std::map<std::tuple<VmaKind, u32, u32, u64>, u64> objects;
  u64 run_ids = 0;
  for (size_t mi = 0; mi < members.size(); mi++) {
    const SharingMember &m = members[mi];
    // This process's own stored pages join `stored` only once it is done:
    // a core refers to earlier cores, never to itself.
    std::vector<std::pair<PageKey, Stored>> own;
    for (VmaPlan &v : *m.memory) {
      u64 object = 0;
      if (is_shared_memory_object(v))
        object = objects.try_emplace({v.kind, v.map.dev_major, v.map.dev_minor, v.map.ino}, objects.size() + 1)
                     .first->second;
      if (!KeyCursor(v, object).keyed()) continue;
      std::vector<PageRun> runs;
      if (mi == 0) {
        runs = v.runs;
      } else {
        KeyCursor cursor(v, object);
        u64 last_source_run = 0;
        for (const PageRun &r : v.runs) {
          if (r.source != PageSource::Image) {
            append(runs, r, 0, last_source_run);
            continue;
          }
          for (u64 addr = r.start; addr < r.start + r.length; addr += kPageSize) {
            PageKey key;
            auto found = cursor.key_at(addr, key) ? stored.find(key) : stored.end();
            if (found == stored.end()) {
              append(runs, {addr, kPageSize, PageSource::Image, 0, 0}, 0, last_source_run);
              continue;
            }
            append(runs, {addr, kPageSize, PageSource::Earlier, found->second.addr, found->second.pid},
                   found->second.run, last_source_run);
            (object ? out.shared_object_bytes : out.bytes) += kPageSize;
          }
        }
      }
      // The pages this process stores, by the stored run that holds them.
      KeyCursor cursor(v, object);
      for (const PageRun &r : runs) {
        if (r.source != PageSource::Image) continue;
        u64 id = ++run_ids;
        for (u64 addr = r.start; addr < r.start + r.length; addr += kPageSize)
          if (PageKey key; cursor.key_at(addr, key)) own.push_back({key, {m.pid, addr, id}});
      }
      for (const PageRun &r : runs)
        if (r.source == PageSource::Earlier) out.ranges++;
      v.runs = std::move(runs);
    }
    // The first process storing a page wins (a process mapping one object
    // twice stores both; it never refers to itself).
    for (const auto &[key, where] : own) stored.emplace(key, where);
  }
  return out;
}

}  // namespace ckpt::writer
