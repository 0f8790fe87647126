// The restorer region of one process: the blob, its typed arguments
// (rs_args and every array it points to, abi.h), the threads' restorer
// stacks and the scratch space for moving the vdso, laid out at an address
// free in both the old and the new address space. The layout runs twice:
// once into a heap buffer to measure the arguments exactly, once in place.
#pragma once

#include <vector>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

#include "../restorer/abi.h"

namespace ckpt::reader {

/// The fds of the restoring child that the restorer uses, already renumbered
/// above the restored fd table.
struct RestorerFds {
  int image_fd = -1;                 ///< pread for the memory fill
  int status_fd = -1;                ///< the verdict pipe to imgtool
  int uffd = -1;                     ///< --lazy: the userfaultfd, or -1
  int exe_fd = -1;                   ///< PR_SET_MM_MAP's exe_fd
  std::vector<int> vma_fd;           ///< per VmaRecord: fd to map it from, or -1
  std::vector<bool> prefilled;       ///< per VmaRecord: its object holds its bytes already
  std::vector<int> close_fds;        ///< closed by the restorer once mapped
  /// A process of a tree: the memfd seals the restorer would add once
  /// memory is mapped are imgtool's to add, once every process of the tree
  /// has mapped (add_late_seals, decision 204).
  bool late_seals_by_imgtool = false;
  /// The restore is of this one process, not a tree: its restorer may make
  /// a temporary thread (a tid of the kernel's choosing) once its own
  /// threads exist, as a second filler (decision 248). In a tree other
  /// processes' restorers still claim their tids meanwhile.
  bool one_process = false;
};

/// A laid-out region, ready for the jump.
struct RestorerRegion {
  img::u64 entry = 0;                ///< the blob's first byte
  rs_args *args = nullptr;           ///< rdi at the entry
  img::u64 stack = 0;                ///< the leader's restorer stack
  /// Segments of the image the restorer does not check as it reads them
  /// (fill_checks.h): an eager restore checks them before the jump.
  std::vector<img::IntegrityRecord> check_before;
};

/// Maps the region and lays out everything the restorer needs to turn the
/// calling process into the image's: memory, vdso moves, mm fields,
/// threads (with their signal frames and privileges), pending signals and
/// credentials.
img::Expected<RestorerRegion> lay_out_restorer(const img::ImageReader &image, const img::CkptView &view,
                                               const img::CoreView &core, const RestorerFds &fds);

/// Unregisters our rseq area, switches to the leader's restorer stack and
/// enters the blob. Does not return.
[[noreturn]] void jump_to_restorer(const RestorerRegion &region);

}  // namespace ckpt::reader
