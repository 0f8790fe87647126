// Restores the per-process settings of TaskRecord (issue 17):
// oom_score_adj, loginuid, child subreaper, THP disable and membarrier
// registrations, and cgroup membership, in the process that becomes the
// image, before the restorer drops privileges (writing loginuid needs
// CAP_AUDIT_CONTROL) and fills its memory (charged to the cgroup it is in).
#pragma once

#include <string_view>

#include <ckpt/img/expected.h>
#include <ckpt/img/records.h>

namespace ckpt::reader {

/// Nothing for an image whose writer did not capture them; otherwise each
/// setting as recorded, or an error naming the one that cannot be.
/// `cgroup` is the text TaskRecord::cgroup names.
img::Status restore_process_settings(const img::TaskRecord &t, std::string_view cgroup, std::string_view cgroup_settings);

}  // namespace ckpt::reader
