#include "mapped_objects.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <tuple>
#include <unistd.h>

#include <ckpt/img/file_identity.h>
#include <ckpt/img/reader.h>

#include "fd_kinds/fd_kind.h"

namespace ckpt::reader {

using namespace img;


static bool is_deleted_file(const VmaRecord &m) {
  return static_cast<VmaKind>(m.kind) == VmaKind::File && (m.flags & kVmaDeletedFile);
}

static bool page_is_zero(const u8 *p) {
  for (u64 i = 0; i < kPageSize; i++)
    if (p[i]) return false;
  return true;
}

// Calls put(object offset, bytes, n) for every stored page of the mappings
// in `sources` that is not all zero: the objects they go into start
// zero-filled (a fresh shmem object or a truncated file), and a zero page
// left alone costs no memory. A page mapped by several sources is put
// once per mapping (the same bytes: stored once and referred to, §9.23).
template <typename Put>
static Status for_each_stored_page(const std::vector<ObjectMappings> &sources, Put &&put) {
  for (const ObjectMappings &src : sources)
    for (const VmaRecord *o : src.maps)
      for (u32 k = 0; k < o->range_count; k++) {
        const PageRangeRecord &r = src.view->ranges.records[o->first_range + k];
        if (!stored_in_file(r)) continue;
        const u8 *bytes = stored_range(*src.image, *src.view, r).bytes.data();
        for (u64 off = 0; off < r.length; off += kPageSize) {
          u64 n = std::min(kPageSize, r.length - off);
          if (n == kPageSize && page_is_zero(bytes + off)) continue;
          CKPT_TRY(put(o->pgoff + (r.start - o->start) + off, bytes + off, n, r.start + off));
        }
      }
  return {};
}

// Writes the stored bytes of every mapping in `sources` into fd at the
// mapping's file offset.
static Status write_stored_pages(const std::vector<ObjectMappings> &sources, int fd) {
  return for_each_stored_page(sources, [&](u64 at, const u8 *bytes, u64 n, u64 addr) -> Status {
    if (pwrite(fd, bytes, n, static_cast<off_t>(at)) != static_cast<ssize_t>(n))
      return make_error("cannot refill the object mapped at 0x%llx: %s", (unsigned long long)addr, strerror(errno));
    return {};
  });
}

u32 hugetlb_mmap_flags(u64 page_size) {
  u32 flags = MAP_HUGETLB;
  if (page_size && (page_size & (page_size - 1)) == 0) flags |= u32(__builtin_ctzll(page_size)) << MAP_HUGE_SHIFT;
  return flags;
}

// A fresh memory object of `size` bytes holding the stored bytes of
// `maps`, of the same kind as MAP_SHARED|MAP_ANONYMOUS memory (shmem, or
// hugetlbfs with MAP_HUGETLB in `huge_flags`), so /proc/PID/maps shows it
// as before ("/dev/zero (deleted)", "/anon_hugepage (deleted)"). Made by
// such an mmap, filled through it (hugetlbfs files have no write()), and
// reopened through /proc/self/map_files, which needs
// CAP_CHECKPOINT_RESTORE (or CAP_SYS_ADMIN) like the rest of restore.
Expected<int> new_shared_anon_object(const std::vector<ObjectMappings> &sources, u64 size, u32 huge_flags) {
  void *p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | int(huge_flags), -1, 0);
  if (p == MAP_FAILED)
    return make_error("cannot create %llu bytes of shared %smemory: %s", (unsigned long long)size,
                      huge_flags ? "hugetlb " : "", strerror(errno));
  u8 *base = static_cast<u8 *>(p);
  (void)for_each_stored_page(sources, [&](u64 at, const u8 *bytes, u64 n, u64) -> Status {
    std::memcpy(base + at, bytes, n);
    return {};
  });
  char link[96];
  std::snprintf(link, sizeof link, "/proc/self/map_files/%llx-%llx", (unsigned long long)reinterpret_cast<u64>(p),
                (unsigned long long)(reinterpret_cast<u64>(p) + size));
  int fd = open(link, O_RDWR | O_CLOEXEC);
  int e = errno;
  munmap(p, size);
  if (fd < 0) return make_error("cannot open shared memory through %s: %s", link, strerror(e));
  return fd;
}

ObjectMappings mappings_of_object(const CkptView &v, const ImageReader &image, const VmaRecord &m, u64 *size) {
  ObjectMappings out{&v, &image, {}};
  for (const VmaRecord &o : v.vmas.records)
    if (o.kind == m.kind && (o.flags & kVmaShared) && o.dev == m.dev && o.ino == m.ino) {
      out.maps.push_back(&o);
      *size = std::max(*size, o.pgoff + (o.end - o.start));
    }
  return out;
}

// An unlinked file (a POSIX semaphore or shm_open object of /dev/shm)
// made again in its directory under its old name, filled, reopened by
// that name and unlinked, so that /proc/PID/maps names it as before
// ("/dev/shm/NAME (deleted)", on the same file system). -1 where that
// cannot be (the directory is gone or not ours, the name is taken now:
// another restore of the same image beside this one): the caller makes a
// memfd instead (decision 227).
static Expected<int> remade_deleted_file(const std::vector<ObjectMappings> &sources, u64 size,
                                         const std::string &path) {
  size_t slash = path.rfind('/');
  if (path.empty() || path[0] != '/' || slash == std::string::npos) return -1;
  std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  int tmp = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (tmp < 0) return -1;
  Status filled = ftruncate(tmp, static_cast<off_t>(size)) == 0 ? write_stored_pages(sources, tmp)
                                                                : make_error("ftruncate: %s", strerror(errno));
  if (!filled) {
    close(tmp);
    return filled.error();
  }
  // Kernel quirk: an O_TMPFILE file keeps the name "#INODE" for its open
  // file even once linked (its dentry is the anonymous one), so the
  // mappings are made from a new open of the linked name.
  std::string self = "/proc/self/fd/" + std::to_string(tmp);
  int fd = -1;
  if (linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) {
    fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    unlink(path.c_str());
  }
  close(tmp);
  return fd;
}

Expected<int> new_deleted_file_object(const std::vector<ObjectMappings> &sources, u64 size) {
  // A memfd keeps its name ("/memfd:NAME", without " (deleted)") and the
  // seals its mappings' records carry (format minor 8, decision 226);
  // another deleted file is made again under its name where it can be,
  // else it becomes a memfd named "ckpt-shared".
  std::string name = "ckpt-shared";
  std::string file;
  const VmaRecord *sealed = nullptr, *moded = nullptr;
  for (const ObjectMappings &src : sources)
    for (const VmaRecord *o : src.maps) {
      std::string_view path = src.view->vmas.str_or_empty(o->path);
      if (path.rfind("/memfd:", 0) == 0 && path.size() > 7 && name == "ckpt-shared") name = path.substr(7);
      else if (file.empty() && path.rfind("/memfd:", 0) != 0) file = path;
      if ((o->flags & kVmaSeals) && !sealed) sealed = o;
      if ((o->flags & kVmaMode) && !moded) moded = o;
    }
  // The mode the object had (format minor 9, decision 238): without it a
  // memfd keeps memfd_create's 0777 and a remade file O_TMPFILE's 0600.
  // Set before any seal: F_SEAL_EXEC forbids changing the exec bits.
  auto with_mode = [&](int fd) -> Expected<int> {
    if (fd >= 0 && moded && fchmod(fd, moded->mode & 07777) < 0) {
      int e = errno;
      close(fd);
      return make_error("cannot set mode 0%o of the object mapped at 0x%llx: %s", moded->mode & 07777,
                        (unsigned long long)moded->start, strerror(e));
    }
    return fd;
  };
  if (!file.empty() && !sealed) {
    auto remade = remade_deleted_file(sources, size, file);
    if (!remade) return remade;
    if (*remade >= 0) return with_mode(*remade);
  }
  // F_SEAL_SEAL alone is what a memfd made without MFD_ALLOW_SEALING has.
  bool sealing = sealed && sealed->seals != F_SEAL_SEAL;
  int fd = static_cast<int>(syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC | (sealing ? MFD_ALLOW_SEALING : 0)));
  if (fd < 0) return make_error("memfd_create %s: %s", name.c_str(), strerror(errno));
  CKPT_TRY_ASSIGN(fd, with_mode(fd));
  Status filled = ftruncate(fd, static_cast<off_t>(size)) == 0 ? write_stored_pages(sources, fd)
                                                               : make_error("ftruncate: %s", strerror(errno));
  // Sealed once its bytes are back (F_SEAL_WRITE forbids the refill, the
  // size seals the ftruncate), but for the seals that must wait until
  // every mapping is made (memfd_late_seals: the restorer's, or in a tree
  // imgtool's, decisions 192 and 204).
  if (filled && sealing) {
    u32 early = sealed->seals & ~memfd_late_seals(sealed->seals);
    if (early && fcntl(fd, F_ADD_SEALS, int(early)) < 0)
      filled = make_error("cannot seal the recreated memfd %s (mapped at 0x%llx) with 0x%x: %s", name.c_str(),
                          (unsigned long long)sealed->start, early, strerror(errno));
  }
  if (!filled) {
    close(fd);
    return filled.error();
  }
  return fd;
}

Status prepare_shared_objects(const CkptView &v, const ImageReader &image, MappedObjects &out,
                              const std::map<std::tuple<u32, u64, u64>, int> *inherited) {
  out.vma_fd.resize(v.vmas.records.size(), -1);
  out.prefilled.resize(v.vmas.records.size(), false);
  // (kind, dev, ino) -> fd
  std::map<std::tuple<u32, u64, u64>, int> objects;
  for (size_t i = 0; i < v.vmas.records.size(); i++) {
    const VmaRecord &m = v.vmas.records[i];
    auto kind = static_cast<VmaKind>(m.kind);
    bool anon = kind == VmaKind::SharedAnon || kind == VmaKind::Hugetlb;
    if (!(m.flags & kVmaShared) || !(anon || is_deleted_file(m))) continue;
    auto key = std::make_tuple(m.kind, m.dev, m.ino);
    auto it = objects.find(key);
    if (it == objects.end()) {
      std::vector<const VmaRecord *> maps;
      u64 size = 0;
      for (const VmaRecord &o : v.vmas.records)
        if (o.kind == m.kind && (o.flags & kVmaShared) && o.dev == m.dev && o.ino == m.ino &&
            (anon || is_deleted_file(o))) {
          maps.push_back(&o);
          size = std::max(size, o.pgoff + (o.end - o.start));
        }
      int fd = -1;
      // Shared with other processes of a tree: made once by an ancestor
      // and inherited (tree_create.h); ours to map and close.
      if (auto made = inherited ? inherited->find(key) : decltype(inherited->end()){}; inherited && made != inherited->end()) {
        fd = fcntl(made->second, F_DUPFD_CLOEXEC, 0);
        if (fd < 0) return make_error("dup of shared memory: %s", strerror(errno));
      }
      // A deleted file the process still has open was recreated by
      // restore_fds with its bytes: map that very file.
      for (const FdRecord &f : v.fds.records)
        if (fd < 0 && !anon && same_file(m, f) &&
            (static_cast<FdType>(f.type) == FdType::Regular || static_cast<FdType>(f.type) == FdType::MemFd)) {
          std::string self = "/proc/self/fd/" + std::to_string(f.fd);
          fd = open(self.c_str(), O_RDWR | O_CLOEXEC);
          if (fd >= 0) break;
        }
      if (fd < 0) {
        if (anon) {
          auto obj = new_shared_anon_object({{&v, &image, maps}}, size,
                                            kind == VmaKind::Hugetlb ? hugetlb_mmap_flags(m.page_size) : 0);
          if (!obj) return obj.error();
          fd = *obj;
        } else {
          auto obj = new_deleted_file_object({{&v, &image, maps}}, size);
          if (!obj) return obj.error();
          fd = *obj;
        }
      }
      // Any free number: every restored fd is in place already, and the
      // restorer closes this one once it has mapped it.
      out.owned_fds.push_back(fd);
      it = objects.emplace(key, fd).first;
    }
    out.vma_fd[i] = it->second;
    out.prefilled[i] = true;
  }
  return {};
}

static const char kDeleted[] = " (deleted)";

// Links the finished O_TMPFILE file `fd` under `path`. A name taken only
// for a moment (another restore of the same image doing the same) is
// retried; a name held by another file is refused.
static Status link_as(int fd, const std::string &path) {
  std::string self = "/proc/self/fd/" + std::to_string(fd);
  for (int attempt = 0;; attempt++) {
    if (linkat(AT_FDCWD, self.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) return {};
    if (errno != EEXIST || attempt == 200)
      return make_error("cannot recreate the deleted executable %s: %s", path.c_str(),
                        errno == EEXIST ? "another file has its name now" : strerror(errno));
    usleep(10000);
  }
}

Expected<int> open_executable(const CkptView &v, const ImageReader &image, MappedObjects &out) {
  const TaskRecord &task = v.tasks.records[0];
  std::string exe(v.tasks.str_or_empty(task.exe));
  bool deleted = exe.size() > sizeof kDeleted - 1 && exe.compare(exe.size() - (sizeof kDeleted - 1), std::string::npos, kDeleted) == 0;
  if (!deleted) {
    int fd = open(exe.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error("cannot open the executable %s: %s", exe.c_str(), strerror(errno));
    return fd;
  }
  std::string path = exe.substr(0, exe.size() - (sizeof kDeleted - 1));
  // Its mappings: deleted files of that path (one inode; a path reused by
  // several deleted files would show several).
  std::vector<const VmaRecord *> maps;
  u64 ino = 0, size = 0;
  for (const VmaRecord &m : v.vmas.records) {
    if (!is_deleted_file(m) || v.vmas.str_or_empty(m.path) != path) continue;
    if (maps.empty()) ino = m.ino;
    if (m.ino != ino) continue;
    maps.push_back(&m);
    size = std::max({size, m.file_size, m.pgoff + (m.end - m.start)});
  }
  if (maps.empty())
    return make_error("the executable %s was deleted and none of its bytes are in the image", path.c_str());
  // Writable mappings first: where a page is mapped twice, the bytes of a
  // read-only mapping (still the file's) win over a written private copy.
  std::stable_sort(maps.begin(), maps.end(),
                   [](const VmaRecord *a, const VmaRecord *b) { return (a->prot & PROT_WRITE) > (b->prot & PROT_WRITE); });
  std::string dir = path.substr(0, path.rfind('/') + 1);
  int tmp = open(dir.empty() ? "." : dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0755);
  if (tmp < 0) return make_error("cannot recreate the deleted executable %s: %s", path.c_str(), strerror(errno));
  Status made;
  if (ftruncate(tmp, static_cast<off_t>(size)) < 0)
    made = make_error("cannot recreate the deleted executable %s: %s", path.c_str(), strerror(errno));
  if (made) made = write_stored_pages({{&v, &image, maps}}, tmp);
  // The last page was stored whole; the file ended inside it.
  u64 recorded = maps[0]->file_size;
  if (made && recorded && recorded < size && ftruncate(tmp, static_cast<off_t>(recorded)) < 0)
    made = make_error("cannot recreate the deleted executable %s: %s", path.c_str(), strerror(errno));
  if (made) made = link_as(tmp, path);
  if (!made) {
    close(tmp);
    return made.error();
  }
  // PR_SET_MM_MAP refuses an exe_fd whose file is open for writing
  // (exe_file_deny_write_access): reopen read-only, drop the writer.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  int e = errno;
  close(tmp);
  unlink(path.c_str());
  if (fd < 0) return make_error("cannot reopen the recreated executable %s: %s", path.c_str(), strerror(e));
  // The private mappings map the recreated file (their pages are then
  // filled from the image as usual, so their memory is exactly the
  // stored bytes); /proc/PID/maps names the "(deleted)" file again.
  for (size_t i = 0; i < v.vmas.records.size(); i++) {
    const VmaRecord &m = v.vmas.records[i];
    if (std::find(maps.begin(), maps.end(), &m) != maps.end() && !(m.flags & kVmaShared)) out.vma_fd[i] = fd;
  }
  return fd;
}

// The default huge page size here (/proc/meminfo "Hugepagesize:"), 0 if none.
static u64 default_huge_page_size() {
  FILE *f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kb = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "Hugepagesize: %llu kB", &kb) == 1) break;
  std::fclose(f);
  return u64(kb) * 1024;
}

static u64 read_count(const std::string &path) {
  FILE *f = std::fopen(path.c_str(), "r");
  unsigned long long n = 0;
  if (f) {
    if (std::fscanf(f, "%llu", &n) != 1) n = 0;
    std::fclose(f);
  }
  return n;
}

Status check_huge_pages(const CkptView &v) {
  std::map<u64, u64> need;                           // page size -> pages
  std::map<std::tuple<u64, u64>, u64> shared_size;   // (dev, ino) -> bytes
  u64 fallback = 0;
  for (const VmaRecord &m : v.vmas.records) {
    if (static_cast<VmaKind>(m.kind) != VmaKind::Hugetlb) continue;
    u64 ps = m.page_size;
    if (!ps) ps = fallback ? fallback : (fallback = default_huge_page_size());
    if (!ps) return make_error("hugetlb memory at 0x%llx: this kernel has no huge pages", (unsigned long long)m.start);
    if (m.flags & kVmaShared) {
      u64 &size = shared_size[{m.dev, m.ino}];
      u64 end = m.pgoff + (m.end - m.start);
      // Count an object once, at its largest extent.
      if (end > size) {
        need[ps] += (end - size + ps - 1) / ps;
        size = end;
      }
    } else {
      need[ps] += (m.end - m.start + ps - 1) / ps;
    }
  }
  for (auto [ps, pages] : need) {
    std::string dir = "/sys/kernel/mm/hugepages/hugepages-" + std::to_string(ps / 1024) + "kB/";
    if (access(dir.c_str(), F_OK) != 0)
      return make_error("the image has hugetlb memory of %llu kB pages, which this kernel does not offer",
                        (unsigned long long)(ps / 1024));
    u64 free_pages = read_count(dir + "free_hugepages"), reserved = read_count(dir + "resv_hugepages");
    u64 available = free_pages > reserved ? free_pages - reserved : 0;
    if (available < pages)
      return make_error("the image needs %llu huge pages of %llu kB, %llu are available here (see vm.nr_hugepages)",
                        (unsigned long long)pages, (unsigned long long)(ps / 1024), (unsigned long long)available);
  }
  return {};
}

}  // namespace ckpt::reader
