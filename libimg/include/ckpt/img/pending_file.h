// A file written beside its destination that gets the destination's name
// only once complete. Where the filesystem has O_TMPFILE the file has no
// name at all until then, so a writer killed at any moment (SIGKILL, the
// OOM killer) leaves nothing behind; elsewhere it is a named
// `.BASE.tmp-XXXXXXXX` that every non-kill path removes.
#pragma once

#include <string>

#include <ckpt/img/expected.h>

namespace ckpt::img {

struct PendingFile {
  int fd = -1;
  /// Empty for an unnamed (O_TMPFILE) file; the temporary name otherwise.
  std::string temp;
};

/// The folder part of `path` ("." for a bare name).
std::string folder_of(const std::string &path);

/// An image output path may be new or a regular file to replace; a
/// symbolic link (dangling or not), a directory or any other kind of file
/// is refused with one line: dump, merge, extract and convert -o share
/// this rule (DECISIONS 276).
Status check_output_path(const std::string &path);

/// Creates the file (0600 before the umask, never through a symlink)
/// beside `path`, open for writing (and reading with `readable`).
Expected<PendingFile> create_pending_file(const std::string &path, bool readable = false);

/// Gives the complete file the name `path`, replacing what is there
/// (a symlink itself is replaced, never what it points to). The fd stays
/// open. A kill during this call leaves at most one `.BASE.tmp-XXXXXXXX`
/// (the replace case: link under a temporary name, then rename).
Status link_into_place(PendingFile &f, const std::string &path);

/// Closes the fd (if open) and removes the temporary name (if any).
void discard_pending(PendingFile &f);

}  // namespace ckpt::img
