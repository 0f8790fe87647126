// Identities that span the processes of a tree: an open file description
// shared by fds of several processes gets one file_id, a pipe one pipe_id
// and one PipeRecord (its buffered bytes stored once), unique over the file.
#pragma once

#include <vector>

#include <ckpt/img/expected.h>

#include "capture.h"

namespace ckpt::writer {

/// Renumbers file_id and pipe_id of every capture (root first, tree order)
/// across the whole tree, comparing open file descriptions of different
/// processes with kcmp(KCMP_FILE). A pipe's PipeInfo stays with the first
/// process holding an end of it; the others' copies are dropped.
img::Status assign_tree_ids(std::vector<ProcessCapture *> &captures);

}  // namespace ckpt::writer
