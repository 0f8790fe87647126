#include <ckpt/img/file_identity.h>

#include <sys/sysmacros.h>

namespace ckpt::img {

// An st_dev as the kernel's new_encode_dev() packs it (what glibc's
// major()/minor() undo): 12 bits of major, 20 of minor, interleaved.
static FileIdentity from_st_dev(u64 dev, u64 ino) {
  return {static_cast<u32>(major(dev)), static_cast<u32>(minor(dev)), ino};
}

FileIdentity file_identity(const VmaRecord &m) {
  if (m.dev_major || m.dev_minor) return {m.dev_major, m.dev_minor, m.ino};
  // Before format 1.4: (major << 8) | minor, exact for minors below 256
  // (older writers lost the high bits of larger ones).
  return {static_cast<u32>(m.dev >> 8), static_cast<u32>(m.dev & 0xff), m.ino};
}

FileIdentity file_identity(const FdRecord &f) {
  if (f.dev_major || f.dev_minor) return {f.dev_major, f.dev_minor, f.ino};
  return from_st_dev(f.dev, f.ino);
}

FileIdentity file_identity(const StoredFileRecord &f) {
  if (f.dev_major || f.dev_minor) return {f.dev_major, f.dev_minor, f.ino};
  return from_st_dev(f.dev, f.ino);
}

void set_device(FdRecord &f, u64 st_dev) {
  f.dev = st_dev;
  f.dev_major = major(st_dev);
  f.dev_minor = minor(st_dev);
}

void set_device(StoredFileRecord &f, u64 st_dev) {
  f.dev = st_dev;
  f.dev_major = major(st_dev);
  f.dev_minor = minor(st_dev);
}

}  // namespace ckpt::img
