// Incremental chains (chain.h): opening, following a process along the
// chain, resolving Parent pages. Merging is chain_merge.cc's.
#include <ckpt/img/chain.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <set>
#include <unistd.h>

namespace ckpt::img {

namespace {

std::string hex_id(const u8 (&id)[16]) {
  char buf[33];
  for (int i = 0; i < 16; i++) std::snprintf(buf + 2 * i, 3, "%02x", id[i]);
  return buf;
}

// A tree link's embedded cores (live processes), each decoded; a core's
// Parent note, if any, must name the parent its root names (the writer
// gives one to every core that takes pages from PREV, FORMAT.md §12.2).
Status open_cores(ChainLinkImage &link) {
  const CkptView &v = link.view;
  for (const TreeRecord &r : v.tree.records) {
    if (r.flags & kTreeZombie) continue;
    auto who = [&](const Error &e) { return e.context("process " + std::to_string(r.pid)); };
    auto core = link.image.embedded(r);
    if (!core) return who(core.error());
    auto view = decode_ckpt(*core);
    if (!view) return who(view.error());
    if (view->parent && (!v.parent || std::memcmp(view->parent->records[0].image_id, v.parent->records[0].image_id,
                                                  sizeof v.parent->records[0].image_id) != 0))
      return who(Error("its parent image is not the one its tree's root names"));
    link.cores.push_back(std::make_unique<ChainLinkImage>(ChainLinkImage{link.path, core.take(), view.take()}));
  }
  return {};
}

}  // namespace

Expected<std::unique_ptr<ChainLinkImage>> make_chain_link(std::string path, ImageReader image, CkptView view) {
  auto link = std::make_unique<ChainLinkImage>(ChainLinkImage{std::move(path), std::move(image), std::move(view)});
  CKPT_TRY(open_cores(*link));
  return link;
}

const ChainLinkImage *core_of(const ChainLinkImage &link, i32 pid) {
  if (link.view.identity.root_pid == pid) return &link;
  for (const auto &c : link.cores)
    if (c->view.identity.root_pid == pid) return c.get();
  return nullptr;
}

Expected<ProcessChain> process_chain(const Chain &chain, i32 pid) {
  ProcessChain out;
  for (size_t depth = 0; depth < chain.size(); depth++) {
    const ChainLinkImage *core = core_of(*chain[depth], pid);
    if (!core && depth == 0) return make_error("%s holds no process %d", chain[0]->path.c_str(), pid);
    if (!core)
      return make_error("parent image %s holds no process %d, whose pages process %d of %s takes from it",
                        chain[depth]->path.c_str(), pid, pid, chain[depth - 1]->path.c_str());
    out.push_back(core);
    // A core without a Parent note stands alone (a process new since the
    // parent image): this process's chain ends here.
    if (!core->view.parent) return out;
  }
  return make_error("%s refers to a parent image but has none", chain.back()->path.c_str());
}

ProcessChain root_chain(const Chain &chain) {
  ProcessChain out;
  for (const auto &l : chain) out.push_back(l.get());
  return out;
}

std::string parent_path_of(const std::string &child_path, const std::string &hint, const std::string &base_dir) {
  if (!hint.empty() && hint[0] == '/') return hint;
  if (!base_dir.empty()) return base_dir + "/" + hint;
  std::string child = child_path;
  // An exec-form image run as ./FILE opens itself as /proc/self/exe (a
  // magic link: the kernel's own reference to the file, whatever the
  // working directory): its folder is that of the file it links to, not
  // /proc/self (DECISIONS 277). Only a link to a real path counts: a
  // memfd or pipe ("memfd:x", "pipe:[n]") has no folder.
  if (child.rfind("/proc/", 0) == 0) {
    char target[PATH_MAX];
    ssize_t n = readlink(child.c_str(), target, sizeof target - 1);
    if (n > 0 && target[0] == '/') child.assign(target, static_cast<size_t>(n));
  }
  size_t slash = child.rfind('/');
  if (slash == std::string::npos) return hint;
  return child.substr(0, slash + 1) + hint;
}

Expected<Chain> open_chain(const std::string &path, bool check_memory, const std::string &base_dir,
                           LauncherCheck launcher) {
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
    auto image = ImageReader::open(current, launcher);
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
    auto link = make_chain_link(current, image.take(), view.take());
    if (!link) return what(link.error());
    const CkptView &v = (*link)->view;
    std::string next;
    if (v.parent) {
      const ParentRecord &p = v.parent->records[0];
      expected_id = hex_id(p.image_id);
      next = parent_path_of(current, std::string(v.parent->str_or_empty(p.path_hint)), depth ? "" : base_dir);
    }
    chain.push_back(link.take());
    if (next.empty()) return chain;
    current = next;
  }
}

Status resolve_pages(const ProcessChain &chain, size_t link, u64 addr, u64 len, std::vector<ResolvedPiece> &out) {
  const ChainLinkImage &l = *chain[link];
  const auto &ranges = l.view.ranges.records;
  // A single process's ranges ascend (VMAs in address order, ranges tiling each).
  auto it = std::partition_point(ranges.begin(), ranges.end(),
                                 [&](const PageRangeRecord &r) { return r.start + r.length <= addr; });
  for (u64 at = addr, end = addr + len; at < end; ++it) {
    if (it == ranges.end() || it->start > at)
      return make_error("%s (process %d) has no page range at 0x%llx, which its child takes from it",
                        l.path.c_str(), l.view.identity.root_pid, (unsigned long long)at);
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

Status check_process_chains(const Chain &chain) {
  std::vector<i32> pids{chain[0]->view.identity.root_pid};
  for (const TreeRecord &r : chain[0]->view.tree.records)
    if (!(r.flags & kTreeZombie)) pids.push_back(r.pid);
  std::vector<ResolvedPiece> pieces;
  for (i32 pid : pids) {
    auto pc = process_chain(chain, pid);
    if (!pc) return pc.error();
    for (const PageRangeRecord &r : (*pc)[0]->view.ranges.records) {
      if (static_cast<PageSource>(r.source) != PageSource::Parent) continue;
      pieces.clear();
      if (Status s = resolve_pages(*pc, 0, r.start, r.length, pieces); !s)
        return s.error().context("process " + std::to_string(pid));
    }
  }
  return {};
}

}  // namespace ckpt::img
