#include <ckpt/reader/validate.h>

#include <cstring>
#include <optional>
#include <set>

// glibc quirk: <sys/platform/x86.h> is a C header; its inline functions
// return _Bool, which clang++ rejects (g++ takes it as an extension). In
// C++ that type is bool.
#define _Bool bool
#include <sys/platform/x86.h>
#undef _Bool

#include <ckpt/img/chain.h>

#include "preflight.h"

namespace ckpt::reader {

using namespace img;

std::string image_id_hex(const uint8_t (&id)[16]) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : id) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

uint64_t host_xsave_features() {
  // glibc's copy of CPUID leaf 1 (read once at its start), not CPUID
  // again: on a VM each CPUID traps (~60 us on this one, xstate.cc).
  if (!CPU_FEATURE_PRESENT(OSXSAVE)) return 0;
  uint32_t lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

std::string resolve_parent_path(const std::string &child_path, const std::string &hint) {
  if (!hint.empty() && hint[0] == '/') return hint;
  size_t slash = child_path.rfind('/');
  if (slash == std::string::npos) return hint;
  return child_path.substr(0, slash + 1) + hint;
}

// validate_one's checks, leaving what it decoded in *view and *core.
static Status validate_decoding(const ImageReader &image, bool check_memory, std::optional<CkptView> &view,
                                std::optional<CoreView> &core) {
  if (!image.has_ckpt_marker())
    return make_error("not a ckpt image (an ordinary core file: it can be read, but not restored)");
  CKPT_TRY(verify_integrity(image, check_memory));
  auto decoded_view = decode_ckpt(image);
  if (!decoded_view) return decoded_view.error();
  auto decoded_core = decode_core(image);
  if (!decoded_core) return decoded_core.error();
  // Each CKPT thread needs its registers in the core notes, and vice versa.
  std::set<int32_t> core_tids, ckpt_tids;
  for (const CoreThread &t : decoded_core->threads) {
    if (!core_tids.insert(t.prstatus.pr_pid).second)
      return make_error("thread %d has two NT_PRSTATUS notes", t.prstatus.pr_pid);
    if (t.fpregs.empty()) return make_error("thread %d has no NT_FPREGSET", t.prstatus.pr_pid);
  }
  for (const ThreadRecord &t : decoded_view->threads.records) {
    if (!ckpt_tids.insert(t.tid).second) return make_error("thread %d is listed twice", t.tid);
    if (!core_tids.count(t.tid)) return make_error("thread %d has no NT_PRSTATUS registers", t.tid);
  }
  if (core_tids != ckpt_tids) return make_error("the core notes and the thread records name different threads");
  if (decoded_view->tasks.records.empty()) return make_error("the image describes no process");
  if (decoded_view->vmas.records.empty()) return make_error("the image has no memory map");
  view.emplace(decoded_view.take());
  core.emplace(decoded_core.take());
  return {};
}

Status validate_one(const ImageReader &image, CkptView *out_view, bool check_memory) {
  std::optional<CkptView> view;
  std::optional<CoreView> core;
  CKPT_TRY(validate_decoding(image, check_memory, view, core));
  if (out_view) *out_view = std::move(*view);
  return {};
}

Expected<ValidationReport> validate_image(const std::string &path, bool check_memory) {
  std::optional<CkptView> view;
  std::optional<CoreView> core;
  return validate_chain(path, nullptr, check_memory, view, core);
}

namespace {

/// A link of a tree chain as validate_chain opened and decoded it.
struct OpenedLink {
  std::string path;
  ImageReader image;
  CkptView view;
};

/// check_process_chains over the links validate_chain opened; errors name
/// the parent image as open_chain's do.
Status check_tree_chain(std::vector<OpenedLink> &links) {
  Chain chain;
  for (size_t depth = 0; depth < links.size(); depth++) {
    OpenedLink &l = links[depth];
    auto link = make_chain_link(l.path, std::move(l.image), std::move(l.view));
    if (!link) return depth ? link.error().context("parent image " + l.path) : link.error();
    chain.push_back(link.take());
  }
  return check_process_chains(chain);
}

}  // namespace

Expected<ValidationReport> validate_chain(const std::string &path, const ImageReader *first, bool check_memory,
                                          std::optional<CkptView> &first_view, std::optional<CoreView> &first_core) {
  ValidationReport report;
  std::string current = path;
  std::set<std::string> seen;
  const uint8_t *expected_id = nullptr;
  uint8_t expected_buf[16];
  // A chain of tree images: its links as opened here, kept for
  // check_process_chains once the whole chain is known good (each link is
  // opened once).
  std::vector<OpenedLink> tree_links;
  // A chain is walked child first; each parent must carry the id its child
  // names. The depth bound stops a cycle made of copies.
  for (size_t depth = 0; depth < kMaxChainLength; depth++) {
    // The first image may be open already (restore's): it is checked
    // as it is, and what was decoded stays with the caller.
    std::optional<ImageReader> opened;
    if (!(depth == 0 && first)) {
      auto image = ImageReader::open(current);
      if (!image) return depth ? image.error().context("parent image " + current) : image.error();
      opened.emplace(image.take());
    }
    std::optional<CkptView> parent_view;
    std::optional<CoreView> parent_core;
    std::optional<CkptView> &view_slot = depth ? parent_view : first_view;
    std::optional<CoreView> &core_slot = depth ? parent_core : first_core;
    Status s = validate_decoding(opened ? *opened : *first, check_memory, view_slot, core_slot);
    if (!s) return depth ? s.error().context("parent image " + current) : s.error();
    const CkptView &view = *view_slot;
    std::string id = image_id_hex(view.identity.image_id);
    if (expected_id && std::memcmp(expected_id, view.identity.image_id, 16) != 0)
      return make_error("parent image %s has id %s, not the %s its child names", current.c_str(), id.c_str(),
                        image_id_hex(expected_buf).c_str());
    if (!seen.insert(id).second) return make_error("the parent chain loops at %s", current.c_str());
    ChainLink link{current, id};
    for (const PageRangeRecord &r : view.ranges.records) {
      if (stored_in_file(r)) link.stored_pages += r.length / kPageSize;
      if (static_cast<PageSource>(r.source) == PageSource::Parent) link.parent_pages += r.length / kPageSize;
    }
    report.chain.push_back(link);
    std::string next;
    if (view.parent) {
      const ParentRecord &p = view.parent->records[0];
      std::memcpy(expected_buf, p.image_id, 16);
      expected_id = expected_buf;
      next = resolve_parent_path(current, std::string(view.parent->str_or_empty(p.path_hint)));
    }
    // A chain of tree images: every process finds its own core in each
    // parent it takes pages from (FORMAT.md §12.2).
    if (!first_view->tree.records.empty() && (depth || view.parent)) {
      // The caller's first image is its own: opened again here, which never
      // happens for restore (it merges a chain before it validates).
      if (!opened) {
        auto image = ImageReader::open(current);
        if (!image) return image.error();
        opened.emplace(image.take());
      }
      tree_links.push_back({current, std::move(*opened), depth ? std::move(*view_slot) : *view_slot});
    }
    if (next.empty()) {
      if (tree_links.size() > 1) CKPT_TRY(check_tree_chain(tree_links));
      return report;
    }
    current = next;
  }
  return make_error("the parent chain is longer than %zu images", kMaxChainLength);
}

}  // namespace ckpt::reader
