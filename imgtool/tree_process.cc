#include "tree_process.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <cstdlib>

#include <ckpt/img/chain.h>
#include <ckpt/img/model.h>
#include <ckpt/img/reader.h>

namespace ckpt::tool {

using namespace img;

Expected<TreeRecord> find_embedded_process(const std::string &path, i32 pid, bool root_ok) {
  auto image = ImageReader::open(path);
  if (!image) return image.error();
  if (!image->has_ckpt_marker()) return make_error("not a ckpt image");
  CKPT_TRY(verify_integrity(*image));
  auto view = decode_ckpt(*image);
  if (!view) return view.error();
  if (pid == view->identity.root_pid && root_ok) {
    TreeRecord root{};
    root.pid = pid;
    return root;
  }
  if (pid == view->identity.root_pid)
    return make_error("process %d is the root: the image itself is its core (gdb opens it as it is)", pid);
  for (const TreeRecord &r : view->tree.records) {
    if (r.pid != pid) continue;
    if (r.flags & kTreeZombie)
      return make_error("process %d is a zombie (wait status 0x%x): it has no core", pid, unsigned(r.wait_status));
    return r;
  }
  if (view->tree.records.empty()) return make_error("process %d is not in this image (it holds process %d only)", pid, view->identity.root_pid);
  return make_error("process %d is not in this image (see 'imgtool info')", pid);
}

// A core with pages an earlier core stores for it (CowPages, FORMAT.md
// §9.23) is written with those bytes in place, as a one-link merge: gdb and
// eu-stack then read the process's real memory, and the copy stands alone.
// Returns false (nothing written) for a core that refers to none.
static Expected<bool> write_materialised(const std::string &path, const TreeRecord &record, int out_fd) {
  auto root = ImageReader::open(path);
  if (!root) return root.error();
  auto core = root->embedded(record);
  if (!core) return core.error();
  auto view = decode_ckpt(*core);
  if (!view) return view.error().context("process " + std::to_string(record.pid));
  if (view->cow_pages.records.empty()) return false;
  std::vector<TreeCore> cores;  // the sources, checked as restore does
  auto root_view = decode_ckpt(*root);
  if (!root_view) return root_view.error();
  std::vector<std::pair<ImageReader, CkptView>> earlier;
  earlier.reserve(root_view->tree.records.size());
  cores.push_back({&*root, &*root_view});
  for (const TreeRecord &r : root_view->tree.records) {
    if (r.pid == record.pid) break;
    if (r.flags & kTreeZombie) continue;
    auto e = root->embedded(r);
    if (!e) return e.error();
    auto ev = decode_ckpt(*e);
    if (!ev) return ev.error().context("process " + std::to_string(r.pid));
    earlier.emplace_back(e.take(), ev.take());
    cores.push_back({&earlier.back().first, &earlier.back().second});
  }
  cores.push_back({&*core, &*view});
  CKPT_TRY(check_cow_sources(cores));
  Chain one;
  one.push_back(std::make_unique<ChainLinkImage>(ChainLinkImage{path, core.take(), view.take()}));
  CKPT_TRY(write_merged(one, out_fd));
  return true;
}

Status copy_embedded_core(const std::string &path, const TreeRecord &record, int out_fd) {
  auto materialised = write_materialised(path, record, out_fd);
  if (!materialised) return materialised.error();
  if (*materialised) return {};
  int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return make_error("%s: %s", path.c_str(), strerror(errno));
  loff_t from = static_cast<loff_t>(record.offset);
  u64 left = record.size;
  Status result;
  while (left) {
    ssize_t n = copy_file_range(in, &from, out_fd, nullptr, left, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS)) {
      // Not between these files (e.g. onto a pipe): plain reads and writes.
      char buf[1 << 16];
      ssize_t r = pread(in, buf, std::min<u64>(sizeof buf, left), from);
      if (r <= 0) {
        result = make_error("%s: read at %lld: %s", path.c_str(), (long long)from, r < 0 ? strerror(errno) : "end of file");
        break;
      }
      for (ssize_t done = 0; done < r;) {
        ssize_t w = write(out_fd, buf + done, r - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          close(in);
          return make_error("write: %s", strerror(errno));
        }
        done += w;
      }
      from += r;
      left -= r;
      continue;
    }
    if (n <= 0) {
      result = make_error("copying process %d's core: %s", record.pid, n < 0 ? strerror(errno) : "the file ended early");
      break;
    }
    left -= n;
  }
  close(in);
  return result;
}

Status write_root_alone(const std::string &path, int out_fd) {
  auto image = ImageReader::open(path);
  if (!image) return image.error();
  auto view = decode_ckpt(*image);
  if (!view) return view.error();
  Chain one;
  one.push_back(std::make_unique<ChainLinkImage>(ChainLinkImage{path, image.take(), view.take()}));
  return img::write_root_alone(one, out_fd);
}

Expected<reader::RestoreSource> merged_if_incremental(const std::string &path) {
  const char *tmpdir = std::getenv("TMPDIR");
  return reader::RestoreSource::open(path, "", tmpdir && *tmpdir ? tmpdir : "/tmp");
}

}  // namespace ckpt::tool
