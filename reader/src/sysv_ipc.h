// System V IPC objects of an image (CkptNote::SysvIpc), made again before
// the processes that use them: in a new IPC namespace when the tree had one
// of its own, else in this host's, with the ids the programs hold
// (decision 141).
#pragma once

#include <vector>

#include <ckpt/img/model.h>

namespace ckpt::reader {

/// Restore here-now check: in the host's namespace, every object of the
/// image either still exists as itself (same key, size and creator: it
/// outlived the dumped process and is used as it is) or its id and key
/// are free. Otherwise one line naming the object and who holds its id.
img::Status check_sysv_ipc_here(const img::CkptView &v);

/// The objects made by make_sysv_ipc(). Until started() a failed restore
/// removes those it made in the host's namespace (a new namespace goes
/// with its processes).
class SysvIpcObjects {
 public:
  SysvIpcObjects() = default;
  SysvIpcObjects(SysvIpcObjects &&o) noexcept;
  SysvIpcObjects &operator=(SysvIpcObjects &&) = delete;
  ~SysvIpcObjects();
  /// The tree runs, every segment is attached again: those that were
  /// marked for removal (SHM_DEST) are marked again.
  void started();

 private:
  friend img::Expected<SysvIpcObjects> make_sysv_ipc(const img::CkptView &v);
  struct Made {
    img::u32 kind;
    int id;
  };
  std::vector<Made> made_;        ///< made in the host's namespace
  std::vector<int> remove_later_;  ///< shmids to IPC_RMID once attached
  bool running_ = false;
};

/// Enters a new IPC namespace if the image had its own (this thread, and
/// every process it starts afterwards), then makes each object of the
/// image's SysvIpc note that does not exist as itself: same id, key,
/// owner, mode, and bytes / semaphore values / queued messages.
img::Expected<SysvIpcObjects> make_sysv_ipc(const img::CkptView &v);

}  // namespace ckpt::reader
