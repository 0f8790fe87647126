// Merging a chain into one self-contained image (chain.h: write_merged,
// merge_to_temporary): a single process's chain, a one-link embedded core
// (extract), or a chain of tree images process by process.
#include <ckpt/img/chain.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <unordered_map>

#include <ckpt/img/segment_plan.h>
#include <ckpt/img/writer.h>

namespace ckpt::img {

namespace {

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

// One range of the merged image, with the pieces its Image bytes come from
// (an Earlier range names its CowPages record instead).
struct MergedRange {
  u64 start = 0, length = 0;
  PageSource source = PageSource::Zero;
  std::vector<ResolvedPiece> pieces;   // Image only, contiguous
  u32 cow_record = 0;                  // Earlier only
};

// Merging a tree: where an earlier core of the merged image stores the
// bytes at a chain file's page (by its address in the mapping): those
// bytes are one page of one file, so a later core resolving to the very
// same page takes them from there (Earlier, §9.23) instead of storing
// them again. That keeps the copy-on-write sharing of the links (a page
// that is Parent in several processes resolves to one stored page).
struct StoredPage {
  i32 pid = 0;
  u64 addr = 0;
  size_t range = 0;  // which Image range of the merged image holds it
};
using StoredPages = std::unordered_map<const u8 *, StoredPage>;

// One core of the merged image, planned: its notes, segments and ranges.
struct MergedCore {
  std::vector<Note> notes;
  std::vector<SegmentPlan> segments;
  std::vector<std::vector<MergedRange>> ranges;  // per VMA
};

// Plans the merged core of the process whose chain is `chain` (its core in
// the child first). With keep_earlier (a core of a merged tree), the
// child's Earlier ranges stay Earlier and its CowPages note is rebuilt for
// them; otherwise they become Image and the note goes.
// With `alone` (the root of a tree written as a single process: extract),
// the Tree note goes and the Identity counts one process.
Expected<MergedCore> plan_merged_core(const ProcessChain &chain, bool keep_earlier, StoredPages *stored = nullptr,
                                      size_t *range_ids = nullptr, bool alone = false) {
  const ChainLinkImage &child = *chain[0];
  const CkptView &v = child.view;
  MergedCore out;
  // New page ranges, VMA by VMA: the child's own, with Parent resolved.
  std::vector<VmaRecord> vmas = v.vmas.records;
  std::vector<CowPagesRecord> cow;
  size_t last_range = 0;  // the stored range cow.back() takes from
  out.ranges.resize(vmas.size());
  for (size_t vi = 0; vi < vmas.size(); vi++) {
    const VmaRecord &m = vmas[vi];
    auto &merged = out.ranges[vi];
    for (u32 k = 0; k < m.range_count; k++) {
      const PageRangeRecord &r = v.ranges.records[m.first_range + k];
      if (keep_earlier && static_cast<PageSource>(r.source) == PageSource::Earlier) {
        CowPagesRecord c = v.cow_pages.records[r.segment];
        c.file_offset = 0;  // the merged image's writer places it
        merged.push_back({r.start, r.length, PageSource::Earlier, {}, static_cast<u32>(cow.size())});
        cow.push_back(c);
        last_range = 0;  // no page found in `stored` continues it (range ids start at 1)
        continue;
      }
      std::vector<ResolvedPiece> pieces;
      CKPT_TRY(resolve_pages(chain, 0, r.start, r.length, pieces));
      for (const ResolvedPiece &p : pieces) {
        if (stored && p.source == PageSource::Image) {
          for (u64 off = 0; off < p.length; off += kPageSize) {
            auto found = stored->find(p.bytes + off);
            if (found == stored->end()) {
              ResolvedPiece page{p.addr + off, kPageSize, PageSource::Image, p.bytes + off};
              if (merged.empty() || merged.back().source != PageSource::Image)
                merged.push_back({page.addr, 0, PageSource::Image, {}, 0});
              merged.back().length += kPageSize;
              auto &ps = merged.back().pieces;
              if (!ps.empty() && ps.back().bytes + ps.back().length == page.bytes) ps.back().length += kPageSize;
              else ps.push_back(page);
              continue;
            }
            const StoredPage &src = found->second;
            bool follows = !merged.empty() && merged.back().source == PageSource::Earlier && !cow.empty() &&
                           last_range == src.range && cow.back().source_pid == src.pid &&
                           cow.back().source_addr + cow.back().length == src.addr &&
                           merged.back().start + merged.back().length == p.addr + off &&
                           merged.back().cow_record == cow.size() - 1;
            if (follows) {
              merged.back().length += kPageSize;
              cow.back().length += kPageSize;
              continue;
            }
            merged.push_back({p.addr + off, kPageSize, PageSource::Earlier, {}, static_cast<u32>(cow.size())});
            cow.push_back({p.addr + off, kPageSize, 0, src.addr, src.pid, v.identity.root_pid});
            last_range = src.range;
          }
          continue;
        }
        if (merged.empty() || merged.back().source != p.source) merged.push_back({p.addr, 0, p.source, {}, 0});
        merged.back().length += p.length;
        if (p.source == PageSource::Image) merged.back().pieces.push_back(p);
      }
    }
  }
  // This core's stored pages, for the cores after it.
  if (stored)
    for (const auto &per_vma : out.ranges)
      for (const MergedRange &r : per_vma) {
        if (r.source != PageSource::Image) continue;
        size_t id = ++*range_ids;
        for (const ResolvedPiece &p : r.pieces)
          for (u64 off = 0; off < p.length; off += kPageSize)
            stored->emplace(p.bytes + off, StoredPage{v.identity.root_pid, p.addr + off, id});
      }
  // Segments as the writer lays them out (FORMAT.md §11.4), and the ranges'
  // segment indexes (an Earlier range's is its CowPages record's, §9.23).
  std::vector<PageRangeRecord> ranges;
  for (size_t vi = 0; vi < vmas.size(); vi++) {
    VmaRecord &m = vmas[vi];
    m.first_range = static_cast<u32>(ranges.size());
    m.range_count = static_cast<u32>(out.ranges[vi].size());
    for (const MergedRange &r : out.ranges[vi]) {
      u32 first = plan_run_segments(out.segments, r.start, r.length, r.source, m.prot);
      ranges.push_back({r.start, r.length, static_cast<u32>(r.source),
                        r.source == PageSource::Earlier ? r.cow_record : first});
    }
  }
  // Every note of PT_NOTE 0, in order, but for those that change.
  IdentityRecord ident = v.identity;
  ident.flags &= ~u32(kIdentityIncremental);
  if (alone) ident.process_count = 1;
  std::vector<IdentityRecord> idents = {ident};
  for (const NoteRef &n : child.image.notes()) {
    if (n.phdr != 0) continue;  // the integrity note is the writer's to make
    Note note{std::string(n.owner), n.type, std::vector<u8>(n.desc.begin(), n.desc.end())};
    if (n.owner == kOwnerCkpt) {
      switch (static_cast<CkptNote>(n.type)) {
        case CkptNote::Parent:
          continue;
        case CkptNote::Tree:
          if (alone) continue;
          break;
        case CkptNote::CowPages:
          if (cow.empty()) continue;  // every Earlier range is Image now
          note.desc = reencode(v.cow_pages, cow);
          break;
        case CkptNote::Identity:
          note.desc = reencode(v.identity_table, idents);
          break;
        case CkptNote::Vmas:
          note.desc = reencode(v.vmas, vmas);
          break;
        case CkptNote::PageRanges:
          note.desc = reencode(v.ranges, ranges);
          break;
        default:
          break;
      }
    }
    out.notes.push_back(std::move(note));
  }
  if (!cow.empty() && v.cow_pages.records.empty() && !child.image.find_ckpt(CkptNote::CowPages))
    out.notes.push_back({std::string(kOwnerCkpt), static_cast<u32>(CkptNote::CowPages), reencode(v.cow_pages, cow)});
  return out;
}

// The stored bytes of a planned core, in segment order.
Status write_core_bytes(ImageWriter &w, const MergedCore &core) {
  for (const auto &per_vma : core.ranges)
    for (const MergedRange &r : per_vma)
      for (const ResolvedPiece &p : r.pieces) {
        // In slices, so that the page cache, not this process, holds a
        // large chain's bytes.
        for (u64 done = 0; done < p.length;) {
          u64 n = std::min<u64>(p.length - done, 8ull << 20);
          CKPT_TRY(w.write({p.bytes + done, n}));
          done += n;
        }
      }
  return {};
}

// A chain of tree images: the root's merged core with its Tree note (the
// writer places the embedded cores), then each live process's.
Status write_merged_tree(const Chain &chain, int fd) {
  const CkptView &v = chain[0]->view;
  auto root_chain_of = process_chain(chain, v.identity.root_pid);
  if (!root_chain_of) return root_chain_of.error();
  StoredPages stored;
  size_t range_ids = 0;
  auto root = plan_merged_core(*root_chain_of, false, &stored, &range_ids);
  if (!root) return root.error();
  std::vector<MergedCore> cores;
  std::vector<EmbeddedCorePlan> plans;
  for (const TreeRecord &r : v.tree.records) {
    if (r.flags & kTreeZombie) continue;
    auto pc = process_chain(chain, r.pid);
    if (!pc) return pc.error();
    auto core = plan_merged_core(*pc, true, &stored, &range_ids);
    if (!core) return core.error().context("process " + std::to_string(r.pid));
    plans.push_back({core->notes, core->segments});
    cores.push_back(core.take());
  }
  auto writer = ImageWriter::create_tree(std::move(root->notes), root->segments, std::move(plans), {});
  if (!writer) return writer.error();
  CKPT_TRY(writer->begin(fd));
  CKPT_TRY(write_core_bytes(*writer, *root));
  for (size_t i = 0; i < cores.size(); i++) {
    auto part = writer->begin_embedded(i);
    if (!part) return part.error();
    CKPT_TRY(write_core_bytes(**part, cores[i]));
    CKPT_TRY((*part)->finish());
  }
  return writer->finish();
}

}  // namespace

Status write_merged(const Chain &chain, int fd) {
  if (!chain[0]->view.tree.records.empty()) return write_merged_tree(chain, fd);
  return write_root_alone(chain, fd);
}

Status write_root_alone(const Chain &chain, int fd) {
  auto core = plan_merged_core(root_chain(chain), false, nullptr, nullptr, /*alone=*/true);
  if (!core) return core.error();
  auto writer = ImageWriter::create(std::move(core->notes), core->segments);
  if (!writer) return writer.error();
  CKPT_TRY(writer->begin(fd));
  CKPT_TRY(write_core_bytes(*writer, *core));
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
