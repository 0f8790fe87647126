// Seeds for every note kind and every fd kind (make_seeds): records that
// decode_ckpt accepts, added to a synthetic image (tests/support) so that
// the fuzzers start from valid bytes of each kind. seed_kind() runs for
// every CKPT_NOTE_KINDS line (a kind without its own overload gets no
// records here; make_seeds still gives fuzz_tables a table of it), and
// kFdSeeds has one entry per FdType, so a new fd kind does not build
// without its seed.
#pragma once

#include <string>
#include <vector>

#include <ckpt/img/image_notes.h>

namespace ckpt::fuzz {

/// Adds records of every note kind that make_synthetic() leaves empty
/// (seccomp filters, stored files, locks, guard ranges, dirty tracking,
/// SysV IPC, the IPC namespace) and one fd of every fd kind with its state,
/// consistent with the synthetic image of process `pid` (its threads
/// pid..pid+N-1) so the whole still decodes.
void add_every_kind(img::ImageNotes &notes, int pid);

/// An Fds table desc with one fd of `type` and its state, for fuzz_tables.
std::vector<img::u8> fd_kind_table(img::FdType type, int pid);

}  // namespace ckpt::fuzz
