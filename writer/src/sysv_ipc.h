// System V IPC objects (shm segments, semaphore sets, message queues) of a
// frozen tree's IPC namespace, read through the IPC syscalls from inside
// that namespace. Which objects an image holds: decision 141.
#pragma once

#include <sys/types.h>

#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/image_notes.h>
#include <ckpt/img/records.h>

#include "capture.h"

namespace ckpt::writer {

struct SysvIpcObject {
  img::SysvIpcRecord record{};   ///< data is filled in by add_sysv_ipc_notes
  std::vector<img::u8> data;
};

struct SysvIpcCapture {
  bool own_namespace = false;    ///< not the dumper's IPC namespace
  img::u64 ns_inode = 0;
  std::vector<SysvIpcObject> objects;
};

/// Reads the IPC objects of the processes' namespace: every object when it
/// is a namespace of their own, the shm segments they have attached (their
/// SysV mappings) when it is the dumper's. All processes must share one
/// IPC namespace.
img::Expected<SysvIpcCapture> capture_sysv_ipc(const std::vector<const ProcessCapture *> &procs);

/// The capture as the root image's SysvIpc and IpcNamespace notes; in a
/// further process of a tree, the segments it attaches (kSysvIpcInRoot).
void add_sysv_ipc_notes(const SysvIpcCapture &ipc, const ProcessCapture &pc, bool root, img::ImageNotes &notes);

}  // namespace ckpt::writer
