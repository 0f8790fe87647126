// One process of a tree image as a standalone core: found by pid (after the
// whole file's integrity is checked) and copied out byte for byte, for
// `imgtool extract` and `imgtool gdb --pid`.
#pragma once

#include <string>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>
#include <ckpt/reader/restore_source.h>

namespace ckpt::tool {

/// The Tree record of process `pid` of the image at `path`, checked to have
/// an embedded core (the root and zombies have none: each gets its own
/// one-line error; with `root_ok`, the root instead yields a record with
/// size 0, meaning "the file itself").
img::Expected<img::TreeRecord> find_embedded_process(const std::string &path, img::i32 pid, bool root_ok = false);

/// Copies the record's embedded core out of the file at `path` into `out_fd`
/// (copy_file_range: no bytes pass through this process where the file
/// systems allow). A core with pages an earlier core stores for it
/// (CowPages, FORMAT.md §9.23) is instead written with those bytes in
/// place (a one-link merge), so the copy is complete.
img::Status copy_embedded_core(const std::string &path, const img::TreeRecord &record, int out_fd);

/// The root process of the (full) image at `path` as a standalone core:
/// its own notes and memory, without the Tree note and the other
/// processes' cores (img::write_root_alone).
img::Status write_root_alone(const std::string &path, int out_fd);

/// An incremental image's chain merged into an unnamed temporary file in
/// $TMPDIR (FORMAT.md §12.2; reader::RestoreSource, open close-on-exec while
/// the result lives) that a process of it is then found and copied from,
/// each process along its own links; `path` itself for any other file.
img::Expected<reader::RestoreSource> merged_if_incremental(const std::string &path);

}  // namespace ckpt::tool
