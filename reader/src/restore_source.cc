// RestoreSource (ckpt/reader/restore_source.h).
#include <ckpt/reader/restore_source.h>

#include <unistd.h>
#include <utility>

#include <ckpt/img/chain.h>
#include <ckpt/img/reader.h>

namespace ckpt::reader {

using namespace img;

Expected<RestoreSource> RestoreSource::open(const std::string &path, const std::string &base_dir,
                                            const std::string &merge_dir) {
  // Restore reads nothing of an exec form's launcher (LauncherCheck).
  auto image = ImageReader::open(path, LauncherCheck::HeadersOnly);
  if (!image) return RestoreSource(path, -1);  // errors are the checks' to say
  if (!image->find_ckpt(CkptNote::Parent)) {
    RestoreSource full(path, -1);
    full.image_.emplace(image.take());
    return full;
  }
  auto chain = open_chain(path, true, base_dir, LauncherCheck::HeadersOnly);
  if (!chain) return chain.error();
  size_t slash = path.rfind('/');
  std::string dir = !merge_dir.empty()         ? merge_dir
                    : slash == std::string::npos ? "."
                    : slash == 0                 ? "/"
                                                 : path.substr(0, slash);
  auto fd = merge_to_temporary(*chain, dir, true);
  if (!fd) return fd.error();
  return RestoreSource("/proc/self/fd/" + std::to_string(*fd), *fd);
}

RestoreSource::~RestoreSource() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace ckpt::reader
