// Incremental chains (docs/FORMAT.md §12.2): an image whose Parent note
// names the image it builds on, which may name another, and so on. This is
// the one place that opens a chain (checking every link's id, integrity and
// the chain's length and loops) and that says where the bytes of a Parent
// page range are; `imgtool merge`, restore, gdb and the writer's parent
// compare all go through it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

namespace ckpt::img {

/// Longest chain a reader follows (the child included).
inline constexpr size_t kMaxChainLength = 256;

/// One opened image of a chain.
struct ChainLinkImage {
  std::string path;     ///< as opened (the child's path, or a resolved parent path)
  ImageReader image;
  CkptView view;
  /// A tree image's embedded cores of live processes, in Tree record order
  /// (open_chain fills it; each shares `image`'s bytes).
  std::vector<std::unique_ptr<ChainLinkImage>> cores = {};
};

/// A chain, child first; the last link has no parent.
using Chain = std::vector<std::unique_ptr<ChainLinkImage>>;

/// One process's cores along a chain, child first: the core of a pid in
/// the first link, then (while a core has a Parent note) the core of the
/// same pid in the next link (FORMAT.md §12.2: a core's Parent ranges are
/// in the core of the same process of the parent image). Points into a
/// Chain, which must outlive it.
using ProcessChain = std::vector<const ChainLinkImage *>;

/// The core of process `pid` in one link: the link itself for its root,
/// else one of its embedded cores; nullptr if it holds no such process.
const ChainLinkImage *core_of(const ChainLinkImage &link, i32 pid);

/// The ProcessChain of process `pid` of `chain`'s first link. A core whose
/// parent image holds no core of its pid is one error naming both.
Expected<ProcessChain> process_chain(const Chain &chain, i32 pid);

/// The root cores of every link (a single-process chain's ProcessChain).
ProcessChain root_chain(const Chain &chain);

/// Every live process of the chain's first link has its ProcessChain and
/// every page range of its core resolves along it (what a merge would
/// need, without reading a page): verify's check of a tree chain.
Status check_process_chains(const Chain &chain);

/// A parent's path as the contract says: `hint` as given to --parent, a
/// relative one resolved against the directory of `child_path` (against
/// `base_dir` instead when that is not empty, e.g. for an image read from
/// standard input).
std::string parent_path_of(const std::string &child_path, const std::string &hint, const std::string &base_dir = "");

/// Opens `path` and every parent it names. Each link is checked for
/// integrity (verify_integrity, with check_memory), decoded, and must carry
/// the image id its child names; a missing, replaced (other id) or damaged
/// parent, a loop or a chain longer than kMaxChainLength is one error line
/// naming the parent. The links of a tree chain have their embedded cores
/// opened too (ChainLinkImage::cores); each core's Parent note must name
/// the same parent image as its root's. An exec-form link's launcher is
/// checked as `launcher` says (restore reads none of it: HeadersOnly).
Expected<Chain> open_chain(const std::string &path, bool check_memory, const std::string &base_dir = "",
                           LauncherCheck launcher = LauncherCheck::Checksum);

/// A link of a chain made of an image already opened, checked and decoded
/// (open_chain's, or those of a caller that walks the chain itself, as
/// reader::validate_chain does): its embedded cores are opened too, each
/// core's Parent note checked to name its root's parent. Errors name the
/// process.
Expected<std::unique_ptr<ChainLinkImage>> make_chain_link(std::string path, ImageReader image, CkptView view);

/// A part of an address range resolved through a chain: where its bytes
/// are. For Image, `bytes` points at them in one link's file.
struct ResolvedPiece {
  u64 addr = 0, length = 0;
  PageSource source = PageSource::Zero;
  const u8 *bytes = nullptr;   ///< Image only
};

/// Resolves [addr, addr+len) of core `link` (its own page ranges, then the
/// parents' for Parent ranges; an embedded core's Earlier ranges are its
/// Image bytes stored by an earlier core, §9.23) into pieces of source
/// Image, Zero, File or Absent, in address order, appended to `out`. Fails if a link has no page
/// range for an address its child takes from it.
Status resolve_pages(const ProcessChain &chain, size_t link, u64 addr, u64 len, std::vector<ResolvedPiece> &out);

/// Writes the chain's child as one self-contained image to `fd` (FORMAT.md
/// §12.2 merge): every Parent range becomes the Image, Zero or File range it
/// resolves to, the Parent note and kIdentityIncremental go, every other
/// note is kept byte for byte; the image id stays the child's (the merged
/// image is the same checkpoint, so increments of the child still find it).
/// A one-link "chain" of an embedded core of a tree image is written
/// standalone the same way: its Earlier ranges become Image and its
/// CowPages note goes (`imgtool extract`, `gdb --pid`).
/// A chain of tree images is merged process by process (each along its
/// ProcessChain) into one tree image: Earlier ranges of the child's cores
/// stay Earlier (their sources are Image in the child, and so in the
/// merged image), every other range resolves as above.
/// Streams: page bytes are copied from the chain's mappings, never gathered.
Status write_merged(const Chain &chain, int fd);

/// The root process of the chain alone, merged as write_merged merges a
/// single process: a tree image's root loses its Tree note (and so its
/// embedded cores) and its Identity counts one process, which makes it a
/// single-process image (`imgtool extract --pid ROOT`, DECISIONS 278).
/// For a single process's chain it is write_merged.
Status write_root_alone(const Chain &chain, int fd);

/// Merges the chain at `path` into an unnamed temporary file (O_TMPFILE in
/// `dir`, else a memfd) and returns its fd (no O_CLOEXEC unless `cloexec`):
/// what restore and `imgtool gdb` open as /proc/PID/fd/N.
Expected<int> merge_to_temporary(const Chain &chain, const std::string &dir, bool cloexec);

}  // namespace ckpt::img
