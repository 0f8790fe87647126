// The files and memory objects behind the image's mappings that restore
// recreates before the restorer maps them: one object per shared memory
// object of the image (so that every mapping of it, and every fd on it,
// still aliases), and the executable when it had been deleted.
#pragma once

#include <map>
#include <tuple>
#include <vector>

#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

namespace ckpt::reader {

/// Per VmaRecord of the view: the fd the restorer maps it from (-1: not
/// decided here), and whether the object already holds its bytes (the
/// restorer must not fill those again: for a shared object that would be
/// wasted work, and in lazy mode it would replace the shared pages).
struct MappedObjects {
  std::vector<int> vma_fd;
  std::vector<bool> prefilled;
  std::vector<int> owned_fds;   ///< the restorer closes them after mapping
};

/// MAP_SHARED mappings of a deleted file (a memfd, an unlinked file), of
/// shared anonymous memory and of shared hugetlb memory: one object per
/// (kind, device, inode), mapped
/// shared by every mapping of it. A deleted file the process has an fd on
/// reuses that fd's (already recreated) file; otherwise the object is
/// made anew and filled from the image. Call after restore_fds().
/// `inherited`: shared anonymous memory objects a tree's processes share,
/// made once by an ancestor, by (VmaKind, dev, ino).
img::Status prepare_shared_objects(const img::CkptView &v, const img::ImageReader &image, MappedObjects &out,
                                   const std::map<std::tuple<img::u32, img::u64, img::u64>, int> *inherited = nullptr);

/// The shared mappings of one memory object in one process's core.
struct ObjectMappings {
  const img::CkptView *view = nullptr;
  const img::ImageReader *image = nullptr;
  std::vector<const img::VmaRecord *> maps;
};

/// Every shared mapping in v of the object VMA m maps (same kind, dev,
/// inode); raises *size to the object's extent they show.
ObjectMappings mappings_of_object(const img::CkptView &v, const img::ImageReader &image, const img::VmaRecord &m,
                                  img::u64 *size);

/// A fresh shared anonymous (shmem, or hugetlb with `huge_flags`) object of
/// `size` bytes filled with the stored bytes of every mapping in
/// `sources` (of one process or of several: in a tree each page of an
/// object is stored by the first process mapping it), as an fd.
img::Expected<int> new_shared_anon_object(const std::vector<ObjectMappings> &sources, img::u64 size,
                                          img::u32 huge_flags);

/// A fresh memfd of `size` bytes holding the stored bytes of `sources`:
/// the object for MAP_SHARED mappings of a deleted file (a POSIX semaphore
/// or shm_open object in /dev/shm, unlinked) that no fd holds.
img::Expected<int> new_deleted_file_object(const std::vector<ObjectMappings> &sources, img::u64 size);

/// An fd for PR_SET_MM_MAP's exe_fd (/proc/PID/exe). A deleted executable
/// is recreated under its old name from the bytes of its mappings, opened
/// read-only and unlinked again, so that /proc/PID/exe names the same
/// "(deleted)" path; its private mappings are then mapped from it (and
/// filled from the image as usual). Fails with one line when the name is
/// taken by another file or the directory is gone.
img::Expected<int> open_executable(const img::CkptView &v, const img::ImageReader &image, MappedObjects &out);

/// mmap flags for a hugetlb mapping of `page_size` bytes per page
/// (MAP_HUGETLB with the size's log2 in the MAP_HUGE_SHIFT bits; 0 for the
/// default size).
img::u32 hugetlb_mmap_flags(img::u64 page_size);

/// Enough free huge pages here, of each size, for the image's hugetlb
/// memory: without them the restorer's mmap would fail after the point of
/// no return. Fails naming the size, the need and what is free.
img::Status check_huge_pages(const img::CkptView &v);

}  // namespace ckpt::reader
