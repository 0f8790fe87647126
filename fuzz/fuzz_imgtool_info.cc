// fuzz_imgtool_info: what `imgtool info [--json]` does with a file, on
// arbitrary bytes: describe_image (which opens, verifies, decodes and walks
// the parent chain), then both renderings. imgtool's sources are compiled in
// (imgtool/describe.cc); an exception escaping is a crash of imgtool.
//
// The input is handed over as /proc/self/fd/N of a memfd, since
// describe_image takes a path. Parent path hints resolve relative to
// /proc/self/fd/, so a chain can only reach this process's own descriptors
// or absolute paths, which are opened read-only.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "describe.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd = memfd_create("fuzz_imgtool_info", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  if (done == size) {
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    auto info = ckpt::tool::describe_image(path);
    if (info) {
      // Exactly what cmd_info prints for --json and for text.
      std::string json = ckpt::tool::render_json(*info);
      std::string text = ckpt::tool::render_text(*info);
      ckpt::fuzz::touch(json);
      ckpt::fuzz::touch(text);
    } else {
      CKPT_FUZZ_CHECK(!info.error().message().empty());
    }
  }
  close(fd);
  return 0;
}
