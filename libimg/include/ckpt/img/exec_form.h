// The two forms of one image (docs/FORMAT.md §12.3): the core form (ET_CORE,
// what gdb opens) and the exec form (a static-pie launcher runs it as
// ./FILE). Both hold the same core bytes at the same offsets; only the
// first 128 bytes differ and the exec form has the launcher appended:
//
//   core form: [core ELF header][64 zero bytes][phdrs, notes, memory, integrity]
//   exec form: [exec ELF header][core ELF header][same bytes][pad][launcher]
//
// The integrity note covers the core form's bytes, so a conversion never
// touches a checksum and never moves memory.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include <ckpt/img/expected.h>
#include <ckpt/img/format.h>

namespace ckpt::img {

enum class ImageForm { Core, Exec };

/// How much of an exec-form file's launcher a reader checks: everything
/// (its bytes' XXH3 against the exec header's e_flags: verify, info,
/// convert), or its headers only (restore, which reads nothing of the
/// launcher's bytes: hashing them cost a warm start ~5 ms of CPU, each
/// page of the 1.5 MB launcher touched through the mapping).
enum class LauncherCheck { Checksum, HeadersOnly };

/// Where the parts of an exec-form file are.
struct ExecFormLayout {
  u64 core_size = 0;        ///< the core image: [0, core_size), in core view
  u64 launcher_offset = 0;  ///< align_up(core_size, 4096): the launcher's own bytes
  u64 file_size = 0;        ///< launcher_offset + the launcher's length
};

/// True when `head` (the file's first bytes) starts with an exec-form
/// header: the ckpt marker in an ELF header whose e_type is not ET_CORE.
/// Says nothing about whether the rest is intact.
bool looks_like_exec_form(std::span<const u8> head);

/// Checks an exec-form file completely except the core image's own bytes
/// (which the integrity note covers once the file is seen in core view):
/// the saved core header, the launcher's headers, and that the exec header
/// at 0 is exactly the one §12.3 derives from the launcher (its checksum
/// included unless `launcher` is HeadersOnly). Fails with one line naming
/// what is wrong.
Expected<ExecFormLayout> check_exec_form(std::span<const u8> file, LauncherCheck launcher = LauncherCheck::Checksum);

/// Turns the first 128 bytes of an exec-form file into those of its core
/// form, in place (the caller's private copy): the saved core header moves
/// to 0 and bytes 64..127 become zero.
void exec_head_to_core_view(u8 *head);

/// What converting a core image of `core_size` bytes (whose first 64 bytes
/// are `core_header`) to the exec form writes: the 128-byte head at 0 and
/// the launcher bytes (its program headers moved by `launcher_offset`) at
/// `launcher_offset`. Fails if `launcher` is not a static-pie x86-64 ELF
/// whose program headers lie in its first PT_LOAD.
struct ExecFormParts {
  std::vector<u8> head;     ///< 128 bytes: exec ELF header, core ELF header
  u64 launcher_offset = 0;
  std::vector<u8> launcher;  ///< relocated copy, to write at launcher_offset
};
Expected<ExecFormParts> make_exec_form(std::span<const u8> core_header, u64 core_size,
                                       std::span<const u8> launcher);

/// Converts the image at `path` to `to`, in place when `out` is empty.
/// In place, only the first 128 bytes are rewritten (plus the launcher
/// appended, or cut off with ftruncate going back to the core form); with
/// `out`, the image is copied with copy_file_range (a reflink where the
/// filesystem shares extents) into a new file that appears only when
/// complete. The image must be intact in its headers and notes (memory is
/// not read). Returns false when the file already was in that form
/// (nothing written).
Expected<bool> convert_image(const std::string &path, const std::string &out, ImageForm to,
                             std::span<const u8> launcher);

/// An unnamed temporary file (O_TMPFILE in `dir`) holding the core form of
/// the exec-form image at `path`, for readers that take only a core by path
/// (gdb): its data is copied with copy_file_range. Returns the open fd,
/// without O_CLOEXEC so that an exec'd program can open /proc/PID/fd/N.
Expected<int> core_form_copy(const std::string &path, const std::string &dir);

}  // namespace ckpt::img
