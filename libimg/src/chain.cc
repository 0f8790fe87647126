// Incremental chains (chain.h): opening, resolving Parent pages, merging.
#include <ckpt/img/chain.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <sys/mman.h>
#include <unistd.h>

#include <ckpt/img/segment_plan.h>
#include <ckpt/img/writer.h>

namespace ckpt::img {

namespace {


std::string hex_id(const u8 (&id)[16]) {
  char buf[33];
  for (int i = 0; i < 16; i++) std::snprintf(buf + 2 * i, 3, "%02x", id[i]);
  return buf;
}

// A table note's desc with new records and the old data area kept byte for
// byte (records refer into it by offset, so it needs no change).
template <typename R>
std::vector<u8> reencode(const Table<R> &t, const std::vector<R> &records) {
  TableHeader h{sizeof(TableHeader), t.version ? t.version : 1u, sizeof(R), static_cast<u32>(records.size()),
                t.data.size()};
  std::vector<u8> out(sizeof h + records.size() * sizeof(R) + t.data.size());
  std::memcpy(out.data(), &h, sizeof h);
  if (!records.empty()) std::memcpy(out.data() + sizeof h, records.data(), records.size() * sizeof(R));
  if (!t.data.empty()) std::memcpy(out.data() + sizeof h + records.size() * sizeof(R), t.data.data(), t.data.size());
  return out;
}

// One range of the merged image, with the pieces its Image bytes come from.
struct MergedRange {
  u64 start = 0, length = 0;
  PageSource source = PageSource::Zero;
  std::vector<ResolvedPiece> pieces;   // Image only, contiguous
};

}  // namespace

std::string parent_path_of(const std::string &child_path, const std::string &hint, const std::string &base_dir) {
  if (!hint.empty() && hint[0] == '/') return hint;
  if (!base_dir.empty()) return base_dir + "/" + hint;
  size_t slash = child_path.rfind('/');
  if (slash == std::string::npos) return hint;
  return child_path.substr(0, slash + 1) + hint;
}

Expected<Chain> open_chain(const std::string &path, bool check_memory, const std::string &base_dir) {
  Chain chain;
  std::set<std::string> seen;
  std::string current = path;
  std::string expected_id;
  for (size_t depth = 0;; depth++) {
    if (depth >= kMaxChainLength)
      return make_error("the parent chain of %s is longer than %zu images (a loop of copies?)", path.c_str(),
                        kMaxChainLength);
    auto what = [&](const Error &e) {
      return depth ? e.context("parent image " + current) : e;
    };
    auto image = ImageReader::open(current);
    if (!image) return what(image.error());
    if (!image->has_ckpt_marker()) return what(Error("not a ckpt image"));
    if (Status s = verify_integrity(*image, check_memory); !s) return what(s.error());
    auto view = decode_ckpt(*image);
    if (!view) return what(view.error());
    std::string id = hex_id(view->identity.image_id);
    if (depth && id != expected_id)
      return make_error("parent image %s has id %s, not the %s its child names (replaced?)", current.c_str(),
                        id.c_str(), expected_id.c_str());
    if (!seen.insert(id).second) return make_error("the parent chain loops at %s", current.c_str());
    if (view->parent && !view->tree.records.empty())
      return what(Error("a process-tree image cannot be incremental"));
    auto link = std::make_unique<ChainLinkImage>(ChainLinkImage{current, image.take(), view.take()});
    const CkptView &v = link->view;
    std::string next;
    if (v.parent) {
      const ParentRecord &p = v.parent->records[0];
      expected_id = hex_id(p.image_id);
      next = parent_path_of(current, std::string(v.parent->str_or_empty(p.path_hint)), depth ? "" : base_dir);
    }
    chain.push_back(std::move(link));
    if (next.empty()) return chain;
    current = next;
  }
}

Status resolve_pages(const Chain &chain, size_t link, u64 addr, u64 len, std::vector<ResolvedPiece> &out) {
  const ChainLinkImage &l = *chain[link];
  const auto &ranges = l.view.ranges.records;
  // A single process's ranges ascend (VMAs in address order, ranges tiling each).
  auto it = std::partition_point(ranges.begin(), ranges.end(),
                                 [&](const PageRangeRecord &r) { return r.start + r.length <= addr; });
  for (u64 at = addr, end = addr + len; at < end; ++it) {
    if (it == ranges.end() || it->start > at)
      return make_error("%s has no page range at 0x%llx, which its child takes from it", l.path.c_str(),
                        (unsigned long long)at);
    u64 piece_end = std::min(end, it->start + it->length);
    auto source = static_cast<PageSource>(it->source);
    if (source == PageSource::Parent) {
      if (link + 1 >= chain.size())
        return make_error("%s refers to a parent image but has none", l.path.c_str());
      CKPT_TRY(resolve_pages(chain, link + 1, at, piece_end - at, out));
    } else {
      // Bytes an earlier core of a tree image stores (§9.23) are stored
      // bytes like the link's own.
      if (source == PageSource::Earlier) source = PageSource::Image;
      ResolvedPiece p{at, piece_end - at, source, nullptr};
      if (source == PageSource::Image) p.bytes = stored_range(l.image, l.view, *it).bytes.data() + (at - it->start);
      if (!out.empty() && out.back().source == source && out.back().addr + out.back().length == at &&
          (source != PageSource::Image || out.back().bytes + out.back().length == p.bytes))
        out.back().length += p.length;
      else
        out.push_back(p);
    }
    at = piece_end;
  }
  return {};
}

Status write_merged(const Chain &chain, int fd) {
  const ChainLinkImage &child = *chain[0];
  const CkptView &v = child.view;
  if (!v.tree.records.empty()) return make_error("%s is a process-tree image, not a chain link", child.path.c_str());

  // New page ranges, VMA by VMA: the child's own, with Parent resolved.
  std::vector<VmaRecord> vmas = v.vmas.records;
  std::vector<std::vector<MergedRange>> merged(vmas.size());
  for (size_t vi = 0; vi < vmas.size(); vi++) {
    const VmaRecord &m = vmas[vi];
    std::vector<ResolvedPiece> pieces;
    for (u32 k = 0; k < m.range_count; k++) {
      const PageRangeRecord &r = v.ranges.records[m.first_range + k];
      CKPT_TRY(resolve_pages(chain, 0, r.start, r.length, pieces));
    }
    for (const ResolvedPiece &p : pieces) {
      auto &out = merged[vi];
      if (out.empty() || out.back().source != p.source) out.push_back({p.addr, 0, p.source, {}});
      out.back().length += p.length;
      if (p.source == PageSource::Image) out.back().pieces.push_back(p);
    }
  }
  // Segments as the writer lays them out (FORMAT.md §11.4), and the ranges'
  // segment indexes.
  std::vector<SegmentPlan> segments;
  std::vector<PageRangeRecord> ranges;
  for (size_t vi = 0; vi < vmas.size(); vi++) {
    VmaRecord &m = vmas[vi];
    m.first_range = static_cast<u32>(ranges.size());
    m.range_count = static_cast<u32>(merged[vi].size());
    for (const MergedRange &r : merged[vi]) {
      u32 first = plan_run_segments(segments, r.start, r.length, r.source, m.prot);
      ranges.push_back({r.start, r.length, static_cast<u32>(r.source), first});
    }
  }
  // Every note of PT_NOTE 0, in order, but for the three that change.
  std::vector<Note> notes;
  IdentityRecord ident = v.identity;
  ident.flags &= ~u32(kIdentityIncremental);
  std::vector<IdentityRecord> idents = {ident};
  for (const NoteRef &n : child.image.notes()) {
    if (n.phdr != 0) continue;  // the integrity note is the writer's to make
    Note out{std::string(n.owner), n.type, std::vector<u8>(n.desc.begin(), n.desc.end())};
    if (n.owner == kOwnerCkpt) {
      switch (static_cast<CkptNote>(n.type)) {
        case CkptNote::Parent:
        case CkptNote::CowPages:  // every Earlier range is Image now
          continue;
        case CkptNote::Identity:
          out.desc = reencode(v.identity_table, idents);
          break;
        case CkptNote::Vmas:
          out.desc = reencode(v.vmas, vmas);
          break;
        case CkptNote::PageRanges:
          out.desc = reencode(v.ranges, ranges);
          break;
        default:
          break;
      }
    }
    notes.push_back(std::move(out));
  }
  auto writer = ImageWriter::create(std::move(notes), std::move(segments));
  if (!writer) return writer.error();
  CKPT_TRY(writer->begin(fd));
  for (const auto &per_vma : merged)
    for (const MergedRange &r : per_vma)
      for (const ResolvedPiece &p : r.pieces) {
        // In slices, so that the page cache, not this process, holds a
        // large chain's bytes.
        for (u64 done = 0; done < p.length;) {
          u64 n = std::min<u64>(p.length - done, 8ull << 20);
          CKPT_TRY(writer->write({p.bytes + done, n}));
          done += n;
        }
      }
  return writer->finish();
}

Expected<int> merge_to_temporary(const Chain &chain, const std::string &dir, bool cloexec) {
  int flags = O_RDWR | (cloexec ? O_CLOEXEC : 0);
  int fd = open(dir.c_str(), O_TMPFILE | flags, 0600);
  if (fd < 0) fd = memfd_create("ckpt-merged-chain", cloexec ? MFD_CLOEXEC : 0);
  if (fd < 0) return make_error("cannot create a temporary file for the merged chain: %s", strerror(errno));
  Status s = write_merged(chain, fd);
  if (!s) {
    close(fd);
    return s.error().context("merging the chain of " + chain[0]->path);
  }
  return fd;
}

}  // namespace ckpt::img
