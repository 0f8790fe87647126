// What restore can bring back, as a pure function of an image's decoded
// notes: the one support list that dump (before anything is killed or
// written), restore, verify and info all consult, so that they agree.
// Checks of *this machine, now* (pids free, files unchanged, vdso shape,
// CPU features) are not here: they live with the reader (reader/src/here_now.cc).
#pragma once

#include <string>
#include <vector>

#include <ckpt/img/image_notes.h>
#include <ckpt/img/model.h>

namespace ckpt::img {

/// One thing the image holds that restore cannot bring back faithfully.
struct Unsupported {
  i32 pid = 0;          ///< the process holding it; 0 for the image as a whole
  std::string what;     ///< e.g. "fd 3 eventpoll", "POSIX timer 0"
};

/// Every offender, in image order (never only the first); empty when
/// restore supports everything the image holds.
std::vector<Unsupported> unsupported_state(const CkptView &view);

/// One line naming them all, grouped by pid:
/// "pid 123: fd 3 eventpoll, fd 4 eventfd, POSIX timer 0: not supported";
/// groups are joined with "; ". "" for an empty list.
std::string unsupported_message(const std::vector<Unsupported> &list);

/// A character device restore reopens by path with nothing lost: the
/// stateless memory devices (null, zero, full, random, urandom).
bool is_stateless_char_device(u64 rdev);

/// A CkptView of notes not written yet, so the writer can ask the same
/// questions of what it captured (decode_ckpt_notes). Owns the encoded
/// notes it views, which are the very notes to write: move it, never copy
/// it.
struct NotesView {
  std::vector<Note> notes;
  CkptView view;
  NotesView() = default;
  NotesView(NotesView &&) = default;
  NotesView &operator=(NotesView &&) = default;
  NotesView(const NotesView &) = delete;
  NotesView &operator=(const NotesView &) = delete;
};
Expected<NotesView> view_of_notes(const ImageNotes &notes);

}  // namespace ckpt::img
