// `imgtool diff`: opening each side, and the memory comparison.
#include "image_diff_side.h"

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ckpt/img/chain.h>

#include "names.h"
#include "tree_process.h"

namespace ckpt::tool::diff {

using namespace img;

namespace {

// A page range's bytes at one address: where they come from.
struct Bytes {
  enum Kind { Stored, Zero, FileBacked, Absent } kind = Absent;
  const u8 *data = nullptr;     // Stored: the bytes from address `at` on
  u64 at = 0;
  const VmaRecord *vma = nullptr;
};

Bytes bytes_at(const Side &s, const VmaRecord &m, u64 addr, u64 *run_end) {
  for (u32 k = 0; k < m.range_count; k++) {
    const PageRangeRecord &r = s.view.ranges.records[m.first_range + k];
    if (addr < r.start || addr >= r.start + r.length) continue;
    *run_end = r.start + r.length;
    Bytes b;
    b.vma = &m;
    switch (static_cast<PageSource>(r.source)) {
      case PageSource::Image:
      case PageSource::Earlier:  // stored by an earlier core of the tree (§9.23)
        b.kind = Bytes::Stored;
        b.data = stored_range(s.image, s.view, r).bytes.data() + (addr - r.start);
        b.at = addr;
        break;
      case PageSource::Zero: b.kind = Bytes::Zero; break;
      case PageSource::File: b.kind = Bytes::FileBacked; break;
      default: b.kind = Bytes::Absent; break;
    }
    return b;
  }
  *run_end = m.end;
  return Bytes{};
}

// The page at addr of a file-backed range, read from the mapped file when
// it is still the file the image recorded; false otherwise.
bool read_file_page(const Side &s, const VmaRecord &m, u64 addr, u8 *out) {
  std::string path(s.view.vmas.str_or_empty(m.path));
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  bool same = fstat(fd, &st) == 0 && st.st_ino == m.ino;
  ssize_t n = same ? pread(fd, out, kPageSize, static_cast<off_t>(m.pgoff + (addr - m.start))) : -1;
  close(fd);
  if (n < 0) return false;
  std::memset(out + n, 0, kPageSize - static_cast<size_t>(n));  // past the end of the file: zeros
  return true;
}

// Fills one page of side s into buf (the bytes as the process saw them).
// False when they cannot be known (a changed or missing mapped file).
bool page_bytes(const Side &s, const Bytes &b, u64 addr, u8 *buf) {
  switch (b.kind) {
    case Bytes::Stored: std::memcpy(buf, b.data + (addr - b.at), kPageSize); return true;
    case Bytes::Zero: std::memset(buf, 0, kPageSize); return true;
    case Bytes::FileBacked: return read_file_page(s, *b.vma, addr, buf);
    case Bytes::Absent: return false;
  }
  return false;
}

std::string vma_name(const Side &s, const VmaRecord &m) {
  std::string_view p = s.view.vmas.str_or_empty(m.path);
  return p.empty() ? "[anon]" : std::string(p);
}

json vma_json(const Side &s, const VmaRecord &m) {
  return json{{"start", hex(m.start)}, {"end", hex(m.end)}, {"prot", prot_string(m.prot, m.flags & kVmaShared)},
              {"path", vma_name(s, m)}};
}

// Changed runs of pages inside the overlap [lo, hi) of a VMA of each side.
void diff_overlap(const Side &a, const VmaRecord &ma, const Side &b, const VmaRecord &mb, u64 lo, u64 hi,
                  json &out) {
  std::vector<u8> pa(kPageSize), pb(kPageSize);
  json run;
  u64 run_bytes = 0, run_pages = 0;
  auto flush = [&] {
    if (run.is_null()) return;
    run["bytes_differ"] = run_bytes;
    run["pages"] = run_pages;
    out.push_back(run);
    run = json();
    run_bytes = run_pages = 0;
  };
  u64 addr = lo;
  while (addr < hi) {
    u64 end_a, end_b;
    Bytes ba = bytes_at(a, ma, addr, &end_a), bb = bytes_at(b, mb, addr, &end_b);
    u64 seg_end = std::min({end_a, end_b, hi});
    // Equal without looking: both untouched, both unchanged from the same
    // file, or neither captured.
    bool same_file = ba.kind == Bytes::FileBacked && bb.kind == Bytes::FileBacked && ma.ino == mb.ino &&
                     ma.pgoff - ma.start == mb.pgoff - mb.start;
    if ((ba.kind == Bytes::Zero && bb.kind == Bytes::Zero) || same_file ||
        (ba.kind == Bytes::Absent && bb.kind == Bytes::Absent)) {
      flush();
      addr = seg_end;
      continue;
    }
    for (; addr < seg_end; addr += kPageSize) {
      u64 differ = 0;
      bool known = page_bytes(a, ba, addr, pa.data()) && page_bytes(b, bb, addr, pb.data());
      if (known && std::memcmp(pa.data(), pb.data(), kPageSize) != 0) {
        for (u64 i = 0; i < kPageSize; i++) differ += pa[i] != pb[i];
      } else if (known) {
        differ = 0;
      } else {
        differ = kPageSize;  // cannot tell: counted as changed, and said so
      }
      if (!differ) {
        flush();
        continue;
      }
      if (run.is_null()) {
        run = json{{"change", "changed"}, {"start", hex(addr)}, {"end", hex(addr + kPageSize)},
                   {"prot", prot_string(mb.prot, mb.flags & kVmaShared)}, {"path", vma_name(b, mb)}};
        if (!known) run["unknown"] = true;
      }
      run["end"] = hex(addr + kPageSize);
      run_bytes += differ;
      run_pages++;
    }
  }
  flush();
}

}  // namespace

json diff_memory(const Side &a, const Side &b) {
  json out = json::array();
  // Mappings present on one side only, or with other protections.
  auto covered = [](const std::vector<const VmaRecord *> &vmas, const VmaRecord &m) {
    for (const VmaRecord *o : vmas)
      if (o->start < m.end && m.start < o->end) return true;
    return false;
  };
  for (const VmaRecord *m : a.vmas)
    if (!covered(b.vmas, *m)) out.push_back(with({{"change", "unmapped"}}, vma_json(a, *m)));
  for (const VmaRecord *m : b.vmas)
    if (!covered(a.vmas, *m)) out.push_back(with({{"change", "mapped"}}, vma_json(b, *m)));
  for (const VmaRecord *ma : a.vmas)
    for (const VmaRecord *mb : b.vmas) {
      if (!(ma->start < mb->end && mb->start < ma->end)) continue;
      if (ma->start != mb->start || ma->end != mb->end) {
        json j{{"change", "resized"}};
        j.update(vma_json(b, *mb));
        j["was"] = json{{"start", hex(ma->start)}, {"end", hex(ma->end)}};
        out.push_back(j);
      } else if (ma->prot != mb->prot || (ma->flags & kVmaShared) != (mb->flags & kVmaShared)) {
        json j{{"change", "protection"}};
        j.update(vma_json(b, *mb));
        j["was"] = prot_string(ma->prot, ma->flags & kVmaShared);
        out.push_back(j);
      }
      diff_overlap(a, *ma, b, *mb, std::max(ma->start, mb->start), std::min(ma->end, mb->end), out);
    }
  std::stable_sort(out.begin(), out.end(), [](const json &x, const json &y) {
    return std::stoull(x["start"].get<std::string>(), nullptr, 16) < std::stoull(y["start"].get<std::string>(), nullptr, 16);
  });
  return out;
}

json with(json base, const json &extra) {
  base.update(extra);
  return base;
}

// An incremental image, merged with its chain into an unnamed temporary
// file (what restore and `imgtool gdb` read); a full one as it is.
static Expected<ImageReader> open_whole(const std::string &path) {
  auto file = ImageReader::open(path);
  if (!file) return file.error();
  if (!file->has_ckpt_marker() || !file->find_ckpt(CkptNote::Identity))
    return make_error("not a ckpt image (imgtool diff compares checkpoints)");
  CKPT_TRY(verify_integrity(*file));
  auto view = decode_ckpt(*file);
  if (!view) return view.error();
  if (!(view->identity.flags & kIdentityIncremental)) return file;
  auto chain = open_chain(path, true);
  if (!chain) return chain.error();
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
  auto fd = merge_to_temporary(*chain, dir, true);
  if (!fd) return fd.error();
  auto merged = ImageReader::open("/proc/self/fd/" + std::to_string(*fd));
  close(*fd);  // the mapping keeps the file
  return merged;
}

Expected<Side> open_side(const std::string &path, i32 pid) {
  auto file = open_whole(path);
  if (!file) return file.error();
  auto root_view = decode_ckpt(*file);
  if (!root_view) return root_view.error();
  Side side{path, std::move(*file), {}, {}, nullptr, {}};
  if (pid != 0 && pid != root_view->identity.root_pid) {
    auto record = find_embedded_process(path, pid);
    if (!record) return record.error();
    auto nested = side.image.embedded(*record);
    if (!nested) return nested.error();
    side.image = std::move(*nested);
    auto view = decode_ckpt(side.image);
    if (!view) return view.error();
    side.view = std::move(*view);
  } else {
    side.view = std::move(*root_view);
    pid = side.view.identity.root_pid;
  }
  auto core = decode_core(side.image);
  if (!core) return core.error();
  side.core = std::move(*core);
  for (const TaskRecord &t : side.view.tasks.records)
    if (t.pid == pid) side.task = &t;
  if (!side.task) return make_error("holds no process %d", pid);
  for (const VmaRecord &m : side.view.vmas.records)
    if (m.pid == pid) side.vmas.push_back(&m);
  std::sort(side.vmas.begin(), side.vmas.end(), [](auto *x, auto *y) { return x->start < y->start; });
  return side;
}

}  // namespace ckpt::tool::diff
