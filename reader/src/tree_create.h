// Creating a tree's processes (the plan: tree_plan.h). imgtool clones the
// root with its pid; the root makes the objects several processes share
// (files, pipes, shared memory) once, then every process, starting with
// the root:
//   1. leads its session again (setsid) or its own process group,
//      before it forks, so that its children inherit them;
//   2. tells imgtool it exists (its pid on the "created" pipe);
//   3. forks its children with their pids (clone3 set_tid), each going
//      through the same steps; a zombie child waits for step 4, joins its
//      group and exits with the recorded status (or dies of the signal);
//   4. waits until imgtool has heard from every process (the "go" pipe
//      closes): every group leader exists now, so it joins its group;
//   5. becomes its image (become_image.h) and parks in the restorer.
// imgtool takes every verdict, then hands all processes over at once
// (hand_over_all): no program runs before the whole tree is in place. Any
// failure kills every process created so far.
#pragma once

#include <functional>

#include <ckpt/img/expected.h>

#include "restore_session.h"
#include "tree_plan.h"

namespace ckpt::reader {

/// Creates and hands over the tree; on success out.root is the root's pid
/// (our child) and every process runs. With `lazy`, each process's memory
/// is served by a lazy-pages helper of its own (out.tree_lazy). One line on
/// failure, nothing left.
/// take_terminal: the root takes the restoring terminal as its controlling
/// terminal after setsid; before_running (if set) is called with the
/// root's pid just before the processes run; its failure ends them all.
img::Status start_tree(const TreePlan &plan, bool lazy, bool hold_stopped, RestoredProcesses &out,
                       bool take_terminal = false,
                       const std::function<img::Status(pid_t)> &before_running = nullptr);

}  // namespace ckpt::reader
